package export

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strata-build/packer-plugin-strata/layer"
)

// fakePE is the start of an EFI program of the PE machine type m, padded.
func fakePE(m uint16, tag string) []byte {
	b := make([]byte, 1024)
	copy(b, "MZ")
	binary.LittleEndian.PutUint32(b[0x3c:], 0x40)
	copy(b[0x40:], "PE\x00\x00")
	binary.LittleEndian.PutUint16(b[0x44:], m)
	copy(b[0x100:], tag)
	return b
}

func gzipped(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

// arm64Tree is a tree with an arm64 kernel (gzip-compressed, as Debian's
// arm64 vmlinuz is), its initramfs, and, unless loader is nil, the image's
// systemd-bootaa64.efi.
func arm64Tree(t *testing.T, kernel, loader []byte) string {
	t.Helper()
	root := t.TempDir()
	const v = "6.1.0-9-cloud-arm64"
	for _, d := range []string{"boot", "etc", "usr/lib/systemd/boot/efi"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	os.WriteFile(filepath.Join(root, "etc", "fstab"), []byte("# UNCONFIGURED FSTAB FOR BASE SYSTEM\n"), 0o644)
	os.WriteFile(filepath.Join(root, "boot", "vmlinuz-"+v), kernel, 0o644)
	os.WriteFile(filepath.Join(root, "boot", "initrd.img-"+v), newc([][2]string{{"init", "#!/bin/sh"},
		{"usr/lib/modules/" + v + "/modules.builtin", "kernel/fs/ext4/ext4.ko\n"}}), 0o644)
	if loader != nil {
		os.WriteFile(filepath.Join(root, "usr/lib/systemd/boot/efi/systemd-bootaa64.efi"), loader, 0o644)
	}
	return root
}

// TestExportDiskArm64: an arm64 image's disk has the arm64 root partition
// type, the image's systemd-bootaa64.efi at the removable-media path
// EFI/BOOT/BOOTAA64.EFI, the kernel decompressed on the ESP (UEFI loads
// PE programs only) and the console of QEMU's virt machine (ttyAMA0). The
// architecture comes from the options, else from the image's config.
func TestExportDiskArm64(t *testing.T) {
	image := fakePE(0xaa64, "arm64 Image")
	loader := fakePE(0xaa64, "systemd-boot aa64")
	root := arm64Tree(t, gzipped(image), loader)
	cfg := `{"architecture":"arm64","variant":"v8","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`
	for name, src := range map[string]struct {
		img  *layer.Image
		arch string
	}{
		"option": {&layer.Image{ID: "sha256:0a64", Created: time.Unix(1700000000, 0)}, "arm64"},
		"config": {&layer.Image{ID: "sha256:0a64", Created: time.Unix(1700000000, 0), Config: []byte(cfg)}, ""},
	} {
		t.Run(name, func(t *testing.T) {
			out := t.TempDir()
			var report []string
			res, err := Export(context.Background(), Source{Root: root, Image: src.img}, out, Options{Formats: []string{"disk"},
				Disk: DiskOptions{Architecture: src.arch}, Report: func(s string) { report = append(report, s) }})
			if err != nil {
				t.Fatal(err)
			}
			raw := res.Outputs[0].Path
			tab, err := exec.Command("sfdisk", "--json", raw).Output()
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(tab), strings.ToUpper(RootArm64Type)) || !strings.Contains(string(tab), `"root-arm64"`) {
				t.Errorf("the root partition is not arm64's (%s):\n%s", RootArm64Type, tab)
			}
			esp := raw + "@@1048576"
			for p, want := range map[string][]byte{"/EFI/BOOT/BOOTAA64.EFI": loader, "/EFI/systemd/systemd-bootaa64.efi": loader,
				"/strata-" + derived(src.img.ID, "token")[:12] + "/6.1.0-9-cloud-arm64/linux": image} {
				got, err := exec.Command("mtype", "-i", esp, "::"+p).Output()
				if err != nil || !bytes.Equal(got, want) {
					t.Errorf("%s on the ESP: %v, %d bytes (want %d)", p, err, len(got), len(want))
				}
			}
			if ls, _ := exec.Command("mdir", "-b", "-i", esp, "::/EFI/BOOT").Output(); strings.Contains(string(ls), "X64") {
				t.Errorf("an arm64 disk has an x64 boot program: %s", ls)
			}
			entry, err := exec.Command("mtype", "-i", esp, "::/loader/entries/strata-"+derived(src.img.ID, "token")[:12]+".conf").CombinedOutput()
			if err != nil || !strings.Contains(string(entry), " ro console=ttyAMA0") {
				t.Errorf("loader entry: %v\n%s", err, entry)
			}
			if r := strings.Join(report, "\n"); !strings.Contains(r, "for arm64") || !strings.Contains(r, "systemd-boot from the image's /usr/lib/systemd/boot/efi/systemd-bootaa64.efi") {
				t.Errorf("the report:\n%s", r)
			}
		})
	}
}

// An arm64 disk takes nothing of another architecture: no image
// systemd-boot (the build host's is x64) names the package to install in
// the image; an x64 program at the aa64 path, an amd64 kernel and a GRUB
// without arm64 modules are refused by name, all before anything is
// written; riscv64 gets no disk.
func TestCheckDiskArm64Refusals(t *testing.T) {
	arm := gzipped(fakePE(0xaa64, "arm64 Image"))
	for name, c := range map[string]struct {
		kernel, loader []byte
		opt            DiskOptions
		want           []string
	}{
		"no loader":    {arm, nil, DiskOptions{Architecture: "arm64"}, []string{"systemd-bootaa64.efi", "install systemd-boot-efi in the image"}},
		"x64 loader":   {arm, fakePE(0x8664, "x64"), DiskOptions{Architecture: "arm64"}, []string{"is not an EFI program for arm64"}},
		"amd64 kernel": {fakePE(0x8664, "bzImage"), fakePE(0xaa64, "sd"), DiskOptions{Architecture: "arm64"}, []string{"EFI program for amd64", "linux-image-cloud-arm64"}},
		"grub":         {arm, nil, DiskOptions{Architecture: "arm64", Bootloader: Grub}, []string{"grub-efi-arm64-bin", "arm64-efi"}},
		"riscv64":      {arm, nil, DiskOptions{Architecture: "riscv64"}, []string{"riscv64", "amd64 and arm64"}},
	} {
		t.Run(name, func(t *testing.T) {
			if name == "grub" {
				if _, err := os.Stat(GrubModulesDir("arm64")); err == nil {
					t.Skip("the build host has GRUB's arm64-efi modules")
				}
			}
			root := arm64Tree(t, c.kernel, c.loader)
			_, err := CheckDisk(context.Background(), root, c.opt)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("the error lacks %q: %v", w, err)
				}
			}
		})
	}
	// The image's own GRUB modules do (grub-efi-arm64-bin in the image).
	root := arm64Tree(t, arm, nil)
	os.MkdirAll(filepath.Join(root, "usr/lib/grub/arm64-efi"), 0o755)
	os.WriteFile(filepath.Join(root, "usr/lib/grub/arm64-efi/kernel.img"), []byte("k"), 0o644)
	if how, err := CheckDisk(context.Background(), root, DiskOptions{Architecture: "arm64", Bootloader: Grub}); err != nil {
		t.Errorf("GRUB with the image's modules: %v", err)
	} else if !strings.Contains(how, "for arm64") {
		t.Errorf("CheckDisk: %s", how)
	}
}
