package export

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/strata-build/packer-plugin-strata/internal/inroot"
	"github.com/strata-build/packer-plugin-strata/layer"
)

// newc writes a newc cpio archive of files (name -> content; a name ending
// in / is a directory).
func newc(files [][2]string) []byte {
	var b bytes.Buffer
	entry := func(name, content string, mode uint32) {
		fmt.Fprintf(&b, "070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x", 1, mode, 0, 0, 1, 0, len(content), 0, 0, 0, 0, len(name)+1, 0)
		b.WriteString(name + "\x00")
		for b.Len()%4 != 0 {
			b.WriteByte(0)
		}
		b.WriteString(content)
		for b.Len()%4 != 0 {
			b.WriteByte(0)
		}
	}
	for _, f := range files {
		if strings.HasSuffix(f[0], "/") {
			entry(strings.TrimSuffix(f[0], "/"), "", 0o40755)
		} else {
			entry(f[0], f[1], 0o100644)
		}
	}
	entry("TRAILER!!!", "", 0)
	return b.Bytes()
}

// A Debian initramfs: an uncompressed early archive (microcode), then the
// main one compressed. The check finds /init and the root's module as a
// file or in modules.builtin, and names the fix when it is missing.
func TestReadInitramfs(t *testing.T) {
	const v = "6.1.0-9-cloud-amd64"
	early := newc([][2]string{{"kernel/", ""}, {"kernel/x86/microcode/GenuineIntel.bin", "ucode"}})
	main := newc([][2]string{{".", ""}, {"init", "#!/bin/sh"}, {"usr/lib/modules/" + v + "/kernel/fs/ext4/ext4.ko", "elf"},
		{"usr/lib/modules/" + v + "/modules.builtin", "kernel/fs/squashfs/squashfs.ko\nkernel/fs/fat/vfat.ko\n"}})
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	w.Write(main)
	w.Close()
	var zs bytes.Buffer
	zw, _ := zstd.NewWriter(&zs)
	zw.Write(main)
	zw.Close()
	for name, compressed := range map[string][]byte{"gzip": gz.Bytes(), "zstd": zs.Bytes(), "none": main} {
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			os.MkdirAll(filepath.Join(root, "boot"), 0o755)
			img := append(append(append([]byte{}, early...), make([]byte, 512)...), compressed...)
			os.WriteFile(filepath.Join(root, "boot", "initrd.img-"+v), img, 0o644)
			os.WriteFile(filepath.Join(root, "boot", "vmlinuz-"+v), []byte("kernel"), 0o644)
			r, err := inroot.Open(root)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			k, err := findKernel(r, "auto", "linux-image-cloud-amd64")
			if err != nil {
				t.Fatal(err)
			}
			how, err := checkInitramfs(context.Background(), r, k, RootExt4)
			if err != nil || !strings.Contains(how, "ext4.ko") {
				t.Errorf("ext4: %q, %v", how, err)
			}
			how, err = checkInitramfs(context.Background(), r, k, RootSquashfs)
			if err != nil || !strings.Contains(how, "built into") {
				t.Errorf("squashfs: %q, %v", how, err)
			}
			_, err = checkInitramfs(context.Background(), r, k, "btrfs")
			if err == nil || !strings.Contains(err.Error(), "/etc/initramfs-tools/modules") {
				t.Errorf("btrfs: %v", err)
			}
		})
	}
}

// findKernel: none (names the package), several (lists them, unless one is
// chosen), no initramfs (names initramfs-tools), and links that would lead
// to the host's kernel stay inside the image.
func TestFindKernel(t *testing.T) {
	setup := func(t *testing.T, files map[string]string, links map[string]string) *inroot.Root {
		root := t.TempDir()
		os.MkdirAll(filepath.Join(root, "boot"), 0o755)
		for n, c := range files {
			os.WriteFile(filepath.Join(root, n), []byte(c), 0o644)
		}
		for n, target := range links {
			os.Symlink(target, filepath.Join(root, n))
		}
		r, err := inroot.Open(root)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		return r
	}
	// The host has a kernel here on most machines; a link to it must not
	// count as the image's.
	host := t.TempDir()
	os.WriteFile(filepath.Join(host, "vmlinuz-9.9.9"), []byte("host kernel"), 0o644)
	r := setup(t, nil, map[string]string{"boot/vmlinuz-9.9.9": filepath.Join(host, "vmlinuz-9.9.9"), "vmlinuz": filepath.Join(host, "vmlinuz-9.9.9")})
	if _, err := findKernel(r, "auto", "linux-image-cloud-amd64"); err == nil || !strings.Contains(err.Error(), "linux-image-cloud-amd64") {
		t.Errorf("no kernel (links to the host's only): %v", err)
	}
	r = setup(t, map[string]string{"boot/vmlinuz-1": "a", "boot/initrd.img-1": "i", "boot/vmlinuz-2": "b", "boot/initrd.img-2": "i"}, nil)
	if _, err := findKernel(r, "auto", "linux-image-cloud-amd64"); err == nil || !strings.Contains(err.Error(), "1, 2") || !strings.Contains(err.Error(), `kernel = "VERSION"`) {
		t.Errorf("two kernels: %v", err)
	}
	if k, err := findKernel(r, "2", "linux-image-cloud-amd64"); err != nil || k.Initrd != "/boot/initrd.img-2" {
		t.Errorf("kernel 2: %+v %v", k, err)
	}
	if _, err := findKernel(r, "3", "linux-image-cloud-amd64"); err == nil || !strings.Contains(err.Error(), "1, 2") {
		t.Errorf("kernel 3: %v", err)
	}
	r = setup(t, map[string]string{"boot/vmlinuz-1": "a"}, nil)
	if _, err := findKernel(r, "auto", "linux-image-cloud-amd64"); err == nil || !strings.Contains(err.Error(), "initramfs-tools") {
		t.Errorf("no initramfs: %v", err)
	}
}

// The identifiers are UUIDs, the same for the same image and different for
// each purpose; the partition table script gives every one of them.
func TestDiskIdentifiers(t *testing.T) {
	uuidRe := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	a, b := derivedUUID("sha256:aa", "root"), derivedUUID("sha256:aa", "esp")
	if !uuidRe.MatchString(a) || !uuidRe.MatchString(b) || a == b || a != derivedUUID("sha256:aa", "root") || a == derivedUUID("sha256:ab", "root") {
		t.Errorf("derived UUIDs: %s %s", a, b)
	}
	parts := []partition{{name: "esp", typ: ESPType, uuid: b, size: 260 << 20}, {name: "root-x86-64", typ: RootX8664Type, uuid: a, size: 100<<20 + 1, readOnly: true}}
	total := layoutGPT(parts)
	if parts[0].start != 1<<20 || parts[1].start != 261<<20 || total != (261+101+1)<<20 {
		t.Errorf("layout: %+v, total %d", parts, total)
	}
	s := sfdiskScript("d", parts)
	for _, want := range []string{"label: gpt", "label-id: d", "start=2048, size=532480, type=" + ESPType + ", uuid=" + b, "type=" + RootX8664Type + ", uuid=" + a + `, name="root-x86-64", attrs="GUID:60"`} {
		if !strings.Contains(s, want) {
			t.Errorf("sfdisk script lacks %q:\n%s", want, s)
		}
	}
}

// TestExportDisk: a tree with a kernel and an initramfs (stand-ins: nothing
// boots them here; TestAccDisk boots real ones) becomes a GPT disk with the
// ESP and root types, the loader entry and the disk's fstab finding the
// root by PARTUUID, and nothing of it in the tree. Exported again, and
// from a copy of the tree (other inode numbers, access and change times),
// it is the same disk, byte for byte.
func TestExportDisk(t *testing.T) {
	root := makeTree(t)
	const v = "6.1.0-9-cloud-amd64"
	os.MkdirAll(filepath.Join(root, "boot"), 0o755)
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.WriteFile(filepath.Join(root, "etc", "fstab"), []byte("# UNCONFIGURED FSTAB FOR BASE SYSTEM\n"), 0o644)
	os.WriteFile(filepath.Join(root, "boot", "vmlinuz-"+v), []byte("kernel"), 0o644)
	os.WriteFile(filepath.Join(root, "boot", "initrd.img-"+v), newc([][2]string{{"init", "#!/bin/sh"},
		{"usr/lib/modules/" + v + "/modules.builtin", "kernel/fs/ext4/ext4.ko\n"}}), 0o644)
	os.Remove(filepath.Join(root, "sparse.img")) // 2 GiB of holes: the ext4 root would be large for nothing
	img := &layer.Image{ID: "sha256:0123", Created: time.Unix(1700000000, 0)}
	export := func(root string) (string, string) {
		out := t.TempDir()
		res, err := Export(context.Background(), Source{Root: root, Image: img}, out, Options{Formats: []string{"disk"}})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Outputs) != 1 || res.Outputs[0].Path != filepath.Join(out, "disk.raw") {
			t.Fatalf("outputs %+v", res.Outputs)
		}
		return res.Outputs[0].SHA256, res.Outputs[0].Path
	}
	sum, raw := export(root)
	out, err := exec.Command("sfdisk", "--json", raw).Output()
	if err != nil {
		t.Fatal(err)
	}
	root2 := filepath.Join(t.TempDir(), "copy")
	if b, err := exec.Command("cp", "-a", root, root2).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, b)
	}
	rootUUID := derivedUUID(img.ID, "root")
	for _, want := range []string{`"label":"gpt"`, strings.ToUpper(ESPType), strings.ToUpper(RootX8664Type), strings.ToUpper(rootUUID)} {
		if !strings.Contains(strings.ReplaceAll(strings.ReplaceAll(string(out), " ", ""), "\n", ""), strings.ReplaceAll(want, " ", "")) {
			t.Errorf("sfdisk --json lacks %s:\n%s", want, out)
		}
	}
	entry, err := exec.Command("mtype", "-i", raw+"@@1048576", "::/loader/entries/strata-"+derived(img.ID, "token")[:12]+".conf").CombinedOutput()
	if err != nil || !strings.Contains(string(entry), "options root=PARTUUID="+rootUUID+" ro console=ttyS0") {
		t.Errorf("loader entry: %v\n%s", err, entry)
	}
	fstab, err := exec.Command("debugfs", "-R", "cat /etc/fstab", fmt.Sprintf("%s?offset=%d", raw, (1+minESP>>20)<<20)).Output()
	if err != nil || !strings.Contains(string(fstab), "PARTUUID="+rootUUID+" / ext4 defaults 0 1") {
		t.Errorf("the disk's fstab: %v\n%s", err, fstab)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "etc", "fstab")); !strings.HasPrefix(string(b), "# UNCONFIGURED") {
		t.Errorf("the tree's fstab changed: %s", b)
	}
	if again, _ := export(root); again != sum {
		t.Errorf("the same tree gave another disk: %s, then %s", sum, again)
	}
	if copied, _ := export(root2); copied != sum {
		t.Errorf("a copy of the tree gave another disk: %s, then %s", sum, copied)
	}
}
