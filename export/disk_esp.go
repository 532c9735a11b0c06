package export

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/strata-build/packer-plugin-strata/internal/debarch"
	"github.com/strata-build/packer-plugin-strata/internal/inroot"
)

// Boot loaders a disk can have.
const (
	SystemdBoot = "systemd-boot"
	Grub        = "grub"
)

// Where the boot loaders come from.
const (
	// systemdBootDir holds systemd-boot<EFI>.efi in the image (Debian's
	// systemd-boot-efi package), and on the build host.
	systemdBootDir = "/usr/lib/systemd/boot/efi"
	// grubLibDir holds GRUB's modules per target on the build host
	// (grub-efi-amd64-bin: x86_64-efi) and in an image.
	grubLibDir = "/usr/lib/grub"
)

// SystemdBootEFI is systemd-boot's EFI program for arch, where Debian's
// systemd-boot-efi installs it.
func SystemdBootEFI(arch string) string {
	a, _ := debarch.Lookup(arch)
	return systemdBootDir + "/systemd-boot" + a.Disk.EFI + ".efi"
}

// GrubModulesDir is where GRUB's EFI modules for arch are (the
// debarch.Disk.GrubPackage package installs them).
func GrubModulesDir(arch string) string {
	a, _ := debarch.Lookup(arch)
	return grubLibDir + "/" + a.Disk.Grub
}

// removableName is the UEFI removable-media boot program's name of the
// architecture: BOOTX64.EFI, BOOTAA64.EFI.
func removableName(b *debarch.Disk) string { return "BOOT" + strings.ToUpper(b.EFI) + ".EFI" }

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

// checkBootLoader finds the boot loader the disk gets, before anything
// is written: systemd-boot of the image's architecture, in the image or on
// the build host, or GRUB's modules for it on the build host or in the
// image. A program or module of another architecture is never taken.
func (d *diskPlan) checkBootLoader(root *inroot.Root) error {
	switch d.opt.Bootloader {
	case Grub:
		dir := GrubModulesDir(d.arch)
		if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
			d.grubFrom = ""
			return nil
		}
		if f, err := root.OpenFile(dir + "/kernel.img"); err == nil {
			f.Close()
			d.grubFrom = dir
			return nil
		}
		return fmt.Errorf("bootloader grub: neither the build host nor the image has GRUB's %s modules (%s): install %s in the image (strata-packages install = [%q]) or on the build host, or use bootloader = \"systemd-boot\"",
			d.boot.Grub, dir, d.boot.GrubPackage, d.boot.GrubPackage)
	default:
		p := SystemdBootEFI(d.arch)
		hint := fmt.Sprintf("install systemd-boot-efi in the image (strata-packages install = [\"systemd-boot-efi\"]): the %s image's package has %s", d.arch, p)
		in, err := root.OpenFile(p)
		if err == nil {
			m, ok := peMachine(in)
			in.Close()
			if !ok || m != d.peMachine() {
				return fmt.Errorf("bootloader systemd-boot: the image's %s is not an EFI program for %s", p, d.arch)
			}
			d.loaderFrom = "image"
			return nil
		}
		if !errors.Is(err, os.ErrNotExist) && !strings.Contains(err.Error(), "no such file") {
			return fmt.Errorf("bootloader systemd-boot: the image's %s: %w", p, err)
		}
		host, err := os.Open(p)
		if err != nil {
			return fmt.Errorf("bootloader systemd-boot: neither the image nor the build host has %s: %s", p, hint)
		}
		m, ok := peMachine(host)
		host.Close()
		if !ok || m != d.peMachine() {
			return fmt.Errorf("bootloader systemd-boot: the build host's %s is not an EFI program for %s: %s", p, d.arch, hint)
		}
		d.loaderFrom = "host"
		return nil
	}
}

func (d *diskPlan) peMachine() uint16 {
	a, _ := debarch.Lookup(d.arch)
	return a.PE
}

// bootLoaderFiles returns the ESP's boot loader and its configuration for
// the kernel k (already copied to the ESP at kernelDir), written under tmp.
func (e *exporter) bootLoaderFiles(root *inroot.Root, tmp string, d *diskPlan, k bootKernel) ([]espFile, string, error) {
	kernelDir := espDir(d.token, k.Version)
	options := d.cmdline()
	name := removableName(d.boot)
	loader := filepath.Join(tmp, name)
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
		modules := GrubModulesDir(d.arch)
		from := "GRUB from the build host (" + modules + ", grub-mkimage with an embedded configuration)"
		if d.grubFrom != "" {
			// The image's modules, copied out (links resolved inside it).
			modules = filepath.Join(tmp, "grub-modules")
			if err := copyDirOut(root, d.grubFrom, modules); err != nil {
				return nil, "", fmt.Errorf("GRUB's modules in the image: %w", err)
			}
			defer os.RemoveAll(modules)
			from = "GRUB with the image's modules (" + d.grubFrom + ", the build host's grub-mkimage with an embedded configuration)"
		}
		args := append([]string{"-O", d.boot.Grub, "-d", modules, "-p", "/EFI/BOOT", "-c", cfgPath, "-o", loader}, grubModules...)
		if err := e.run("grub-mkimage", args...); err != nil {
			return nil, "", err
		}
		return []espFile{{"/EFI/BOOT/" + name, loader}}, from, nil
	default:
		p := SystemdBootEFI(d.arch)
		from := "the image's " + p
		if d.loaderFrom == "host" {
			b, err := os.ReadFile(p)
			if err != nil {
				return nil, "", err
			}
			if err := os.WriteFile(loader, b, 0o644); err != nil {
				return nil, "", err
			}
			from = "the build host's " + p
		} else if err := copyOut(root, p, loader); err != nil {
			return nil, "", fmt.Errorf("systemd-boot in the image: %w", err)
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
			{"/EFI/BOOT/" + name, loader},
			{"/EFI/systemd/" + path.Base(p), loader},
			{"/loader/loader.conf", conf},
			{"/loader/entries/" + d.token + ".conf", entry},
		}, "systemd-boot from " + from, nil
	}
}

// copyDirOut copies the regular files of the image's directory dir (not
// its subdirectories) to the new host directory dst.
func copyDirOut(root *inroot.Root, dir, dst string) error {
	ents, err := root.ReadDir(dir)
	if err != nil {
		return err
	}
	if err := os.Mkdir(dst, 0o700); err != nil {
		return err
	}
	for _, en := range ents {
		if !en.Type().IsRegular() || strings.ContainsAny(en.Name(), "/\x00") {
			continue
		}
		if err := copyOut(root, dir+"/"+en.Name(), filepath.Join(dst, en.Name())); err != nil {
			return err
		}
	}
	return nil
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
