package export

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/strata-build/packer-plugin-strata/internal/inroot"
)

// Boot loaders a disk can have.
const (
	SystemdBoot = "systemd-boot"
	Grub        = "grub"
)

// Where the boot loaders come from.
const (
	// systemdBootEFI is systemd-boot in the image (Debian's systemd-boot-efi
	// package), and on the build host when the image has none.
	systemdBootEFI = "/usr/lib/systemd/boot/efi/systemd-bootx64.efi"
	// GrubModulesDir holds the host's GRUB EFI modules (grub-efi-amd64-bin).
	GrubModulesDir = "/usr/lib/grub/x86_64-efi"
)

// grubModules are what the GRUB image needs to find the ESP, read the
// kernel from it and boot it; everything is built in, nothing is loaded
// from the disk.
var grubModules = []string{"part_gpt", "fat", "search", "search_fs_file", "linux", "boot", "echo", "test",
	"normal", "configfile", "gzio", "efi_gop", "all_video", "serial", "terminal"}

// espFile is a file to put on the ESP: its ESP path and content on the host.
type espFile struct {
	dst, src string
}

// espDir is where a disk's kernel and initramfs go on the ESP, per the Boot
// Loader Specification: /ENTRY-TOKEN/VERSION/.
func espDir(token, version string) string { return "/" + token + "/" + version }

// bootLoaderFiles returns the ESP's boot loader and its configuration for
// the kernel k (already copied to the ESP at kernelDir), written under tmp.
func (e *exporter) bootLoaderFiles(root *inroot.Root, tmp string, d *diskPlan, k bootKernel) ([]espFile, string, error) {
	kernelDir := espDir(d.token, k.Version)
	options := d.cmdline()
	loader := filepath.Join(tmp, "BOOTX64.EFI")
	switch d.opt.Bootloader {
	case Grub:
		// One EFI program with the modules and the configuration built in
		// (grub-mkimage -c): it needs no grub directory on the ESP and
		// reads nothing else of the disk but the kernel and initramfs.
		cfg := strings.Join([]string{
			"set timeout=0",
			"search --no-floppy --set=root --file " + kernelDir + "/linux",
			"echo 'Loading Linux " + k.Version + " ...'",
			"linux " + kernelDir + "/linux " + options,
			"initrd " + kernelDir + "/initrd",
			"boot",
		}, "\n") + "\n"
		cfgPath := filepath.Join(tmp, "grub-embedded.cfg")
		if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
			return nil, "", err
		}
		args := append([]string{"-O", "x86_64-efi", "-d", GrubModulesDir, "-p", "/EFI/BOOT", "-c", cfgPath, "-o", loader}, grubModules...)
		if err := e.run("grub-mkimage", args...); err != nil {
			return nil, "", err
		}
		return []espFile{{"/EFI/BOOT/BOOTX64.EFI", loader}}, "GRUB from the build host (" + GrubModulesDir + ", grub-mkimage with an embedded configuration)", nil
	default:
		from := "the image's " + systemdBootEFI
		if err := copyOut(root, systemdBootEFI, loader); err != nil {
			if !os.IsNotExist(err) && !strings.Contains(err.Error(), "no such file") {
				return nil, "", fmt.Errorf("systemd-boot in the image: %w", err)
			}
			b, err := os.ReadFile(systemdBootEFI)
			if err != nil {
				return nil, "", fmt.Errorf("the image has no systemd-boot and neither has the build host (%s): install systemd-boot-efi on the build host or in the image", systemdBootEFI)
			}
			if err := os.WriteFile(loader, b, 0o644); err != nil {
				return nil, "", err
			}
			from = "the build host's " + systemdBootEFI
		}
		conf := filepath.Join(tmp, "loader.conf")
		entry := filepath.Join(tmp, "entry.conf")
		if err := os.WriteFile(conf, []byte("timeout 0\ndefault "+d.token+".conf\neditor no\n"), 0o644); err != nil {
			return nil, "", err
		}
		ent := fmt.Sprintf("title %s\nversion %s\nlinux %s/linux\ninitrd %s/initrd\noptions %s\n", d.title, k.Version, kernelDir, kernelDir, options)
		if err := os.WriteFile(entry, []byte(ent), 0o644); err != nil {
			return nil, "", err
		}
		return []espFile{
			{"/EFI/BOOT/BOOTX64.EFI", loader},
			{"/EFI/systemd/systemd-bootx64.efi", loader},
			{"/loader/loader.conf", conf},
			{"/loader/entries/" + d.token + ".conf", entry},
		}, "systemd-boot from " + from, nil
	}
}

// minESP is the smallest ESP a disk gets: FAT32 needs 65525 clusters, and
// firmware is happiest with the customary 260 MiB. A raw disk is sparse, so
// the free space costs nothing.
const minESP = 260 << 20

// makeESP writes the EFI system partition's FAT32 file system with files to
// img and returns its size. FAT keeps no owners; its times are those of
// SOURCE_DATE_EPOCH (mtools) and its volume ID and boot sector are
// invariant (mkfs.vfat --invariant), so the same files give the same bytes.
func (e *exporter) makeESP(img string, files []espFile, when time.Time) (int64, error) {
	var content int64
	dirs := map[string]bool{}
	for _, f := range files {
		fi, err := os.Stat(f.src)
		if err != nil {
			return 0, err
		}
		content += fi.Size()
		for d := path.Dir(f.dst); d != "/"; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	size := max(int64(minESP), alignUp(content+content/5+32<<20, 1<<20))
	os.Remove(img)
	if err := e.run("mkfs.vfat", "-C", "-F", "32", "-n", "ESP", "--invariant", img, strconv.FormatInt(size/1024, 10)); err != nil {
		return 0, err
	}
	env := []string{"SOURCE_DATE_EPOCH=" + strconv.FormatInt(when.Unix(), 10), "MTOOLS_SKIP_CHECK=1"}
	var dl []string
	for d := range dirs {
		dl = append(dl, d)
	}
	sort.Strings(dl) // parents first
	if len(dl) > 0 {
		args := []string{"-i", img}
		for _, d := range dl {
			args = append(args, "::"+d)
		}
		if err := e.runEnv(env, "mmd", args...); err != nil {
			return 0, err
		}
	}
	sort.Slice(files, func(i, j int) bool { return files[i].dst < files[j].dst })
	for _, f := range files {
		if err := e.runEnv(env, "mcopy", "-i", img, f.src, "::"+f.dst); err != nil {
			return 0, err
		}
	}
	return size, nil
}

func alignUp(n, a int64) int64 { return (n + a - 1) / a * a }
