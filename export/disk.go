package export

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/strata-build/packer-plugin-strata/internal/bytesize"
	"github.com/strata-build/packer-plugin-strata/internal/debarch"
	"github.com/strata-build/packer-plugin-strata/internal/inroot"
)

// Root file systems a disk can have.
const (
	RootExt4     = "ext4"
	RootSquashfs = "squashfs"
)

// QCOW2Format is the format label of a disk's qcow2 copy in Result.Outputs
// (and artifact.json); "disk" asks for it with DiskOptions.QCOW2.
const QCOW2Format = "qcow2"

// DiskOptions control the "disk" format: a GPT disk image with an EFI
// system partition (the boot loader, the kernel and initramfs) and a root
// partition made from the tree.
type DiskOptions struct {
	// Size is the whole disk's size in bytes (0: what it needs plus
	// FreeSpace); the root partition takes what the ESP leaves.
	Size int64
	// FreeSpace is the free space an ext4 root gets beyond its content.
	FreeSpace int64
	// RootFilesystem is RootExt4 (default) or RootSquashfs.
	RootFilesystem string
	// Bootloader is SystemdBoot (default) or Grub.
	Bootloader string
	// Kernel is "auto" (default: the only /boot/vmlinuz-* of the image) or
	// a kernel version.
	Kernel string
	// KernelCmdline is appended to "root=PARTUUID=... ro console=ttyS0"
	// (ttyAMA0 on arm64).
	KernelCmdline string
	// QCOW2 writes disk.qcow2 beside disk.raw.
	QCOW2 bool
	// Architecture is the image's Debian architecture, which picks the
	// boot loader's program, the root partition's type and the console;
	// "" takes the image config's (Source.Image), else amd64.
	Architecture string
}

func (o DiskOptions) withDefaults() DiskOptions {
	if o.RootFilesystem == "" {
		o.RootFilesystem = RootExt4
	}
	if o.Bootloader == "" {
		o.Bootloader = SystemdBoot
	}
	if o.Kernel == "" {
		o.Kernel = "auto"
	}
	if o.Size == 0 && o.FreeSpace == 0 {
		o.FreeSpace = DefaultDiskFreeSpace
	}
	return o
}

// DefaultDiskFreeSpace is the free space of an ext4 root when neither the
// disk's size nor the free space is given.
const DefaultDiskFreeSpace = 512 << 20

// diskPlan is what a disk export found before it writes anything.
type diskPlan struct {
	opt DiskOptions
	// arch is the image's architecture: what its disk boots with.
	arch string
	boot *debarch.Disk
	// loaderFrom is where systemd-boot comes from: "image" or "host";
	// grubFrom the image's GRUB modules directory when the build host has
	// none for the architecture.
	loaderFrom, grubFrom string
	kernel               bootKernel
	// initramfs says how the initramfs mounts the root (for the report).
	initramfs string
	// token names this image's boot entry and ESP directory.
	token string
	title string
	// The identifiers, derived from the image ID: the same image gives
	// the same disk.
	diskGUID, espUUID, rootUUID, fsUUID, hashSeed string
	when                                          time.Time
}

// cmdline is the kernel command line of the disk.
func (d *diskPlan) cmdline() string {
	s := "root=PARTUUID=" + d.rootUUID + " ro"
	if d.opt.RootFilesystem == RootSquashfs {
		s += " rootfstype=squashfs"
	}
	s += " console=" + d.boot.Console
	if c := strings.TrimSpace(d.opt.KernelCmdline); c != "" {
		s += " " + c
	}
	return s
}

// CheckDisk finds the kernel and initramfs a disk of the tree at root
// would boot, and checks that the initramfs can mount the root file
// system, without writing anything: a build calls it before any export.
func CheckDisk(ctx context.Context, root string, opt DiskOptions) (string, error) {
	r, err := inroot.Open(root)
	if err != nil {
		return "", err
	}
	defer r.Close()
	d, err := planDisk(ctx, r, Source{Root: root}, Options{Disk: opt})
	if err != nil {
		return "", err
	}
	return d.describe(), nil
}

func (d *diskPlan) describe() string {
	return fmt.Sprintf("kernel %s with %s for %s (its initramfs mounts the %s root: %s)", d.kernel.Vmlinuz, d.kernel.Initrd, d.arch, d.opt.RootFilesystem, d.initramfs)
}

// planDisk finds the kernel, checks the initramfs and derives the disk's
// identifiers.
func planDisk(ctx context.Context, root *inroot.Root, src Source, opt Options) (*diskPlan, error) {
	o := opt.Disk.withDefaults()
	if o.RootFilesystem != RootExt4 && o.RootFilesystem != RootSquashfs {
		return nil, fmt.Errorf("disk: root_filesystem %q is not ext4 or squashfs", o.RootFilesystem)
	}
	if o.Bootloader != SystemdBoot && o.Bootloader != Grub {
		return nil, fmt.Errorf("disk: bootloader %q is not systemd-boot or grub", o.Bootloader)
	}
	arch, err := diskArch(o.Architecture, src)
	if err != nil {
		return nil, fmt.Errorf("disk: %w", err)
	}
	a, _ := debarch.Lookup(arch)
	k, err := findKernel(root, o.Kernel, a.Disk.Kernel)
	if err != nil {
		return nil, fmt.Errorf("disk: %w", err)
	}
	if err := checkKernelArch(root, k, arch); err != nil {
		return nil, fmt.Errorf("disk: %w", err)
	}
	how, err := checkInitramfs(ctx, root, k, o.RootFilesystem)
	if err != nil {
		return nil, fmt.Errorf("disk: %w", err)
	}
	d := &diskPlan{opt: o, arch: arch, boot: a.Disk, kernel: k, initramfs: how}
	if err := d.checkBootLoader(root); err != nil {
		return nil, fmt.Errorf("disk: %w", err)
	}
	seed, when := "", opt.ClampTime
	if src.Image != nil {
		seed = src.Image.ID
		if when.IsZero() {
			when = src.Image.Created
		}
	}
	if seed == "" {
		// No image to name it: unique, not reproducible.
		seed = fmt.Sprintf("%s %d", root.Path(), time.Now().UnixNano())
	}
	if when.IsZero() {
		when = time.Now()
	}
	d.when = when.UTC().Truncate(time.Second)
	d.token = "strata-" + derived(seed, "token")[:12]
	d.title = "strata image " + shortID(seed)
	d.diskGUID = derivedUUID(seed, "disk")
	d.espUUID = derivedUUID(seed, "esp")
	d.rootUUID = derivedUUID(seed, "root")
	d.fsUUID = derivedUUID(seed, "root-fs")
	d.hashSeed = derivedUUID(seed, "root-fs-hash")
	return d, nil
}

// diskArch is the architecture a disk is made for: the one asked for, else
// the image config's, else amd64. It must be one strata makes disks of.
func diskArch(arch string, src Source) (string, error) {
	if arch == "" && src.Image != nil {
		if cfg, err := src.Image.ConfigFile(); err == nil && cfg.Architecture != "" {
			a, ok := debarch.FromOCI(cfg.Architecture, cfg.Variant)
			if !ok {
				return "", fmt.Errorf("the image's architecture %s/%s is none of Debian's", cfg.Architecture, cfg.Variant)
			}
			arch = a.Name
		}
	}
	if arch == "" {
		arch = "amd64"
	}
	if a, ok := debarch.Lookup(arch); !ok || a.Disk == nil {
		return "", fmt.Errorf("a bootable disk of a %s image is not made: disks are made for %s", arch, strings.Join(debarch.DiskArches(), " and "))
	}
	return arch, nil
}

func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// derived is the hex sha256 of the seed and a purpose.
func derived(seed, purpose string) string {
	h := sha256.Sum256([]byte("strata disk\x00" + seed + "\x00" + purpose))
	return hex.EncodeToString(h[:])
}

// derivedUUID is a UUID (RFC 9562 version 8: custom) made from the seed and
// a purpose.
func derivedUUID(seed, purpose string) string {
	h := sha256.Sum256([]byte("strata disk\x00" + seed + "\x00" + purpose))
	b := h[:16]
	b[6] = b[6]&0x0f | 0x80
	b[8] = b[8]&0x3f | 0x80
	x := hex.EncodeToString(b)
	return x[:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:]
}

// disk writes disk.raw (and disk.qcow2): the root partition's file system
// and the ESP as files, then the GPT around them. Nothing is mounted and no
// loop device is used.
func (e *exporter) disk() ([]Output, error) {
	d := e.diskPlan
	root, err := inroot.Open(e.root)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	final := filepath.Join(e.outDir, FileName("disk"))
	tmp := tmpName(e.outDir, "disk")
	work := tmp + ".parts"
	os.RemoveAll(work)
	if err := os.Mkdir(work, 0o700); err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	// A killed build's next start removes the temporary files the ledger
	// names (regular files only): every one this export may write.
	for _, f := range diskPartFiles {
		defer e.temp(filepath.Join(work, f))()
	}
	defer e.temp(tmp)()

	e.opt.Report("  " + d.describe())
	start := time.Now()
	files := []espFile{
		{espDir(d.token, d.kernel.Version) + "/linux", filepath.Join(work, "linux")},
		{espDir(d.token, d.kernel.Version) + "/initrd", filepath.Join(work, "initrd")},
	}
	if err := copyKernel(root, d.kernel.Vmlinuz, files[0].src); err != nil {
		return nil, err
	}
	if err := copyOut(root, d.kernel.Initrd, files[1].src); err != nil {
		return nil, err
	}
	loader, from, err := e.bootLoaderFiles(root, work, d, d.kernel)
	if err != nil {
		return nil, fmt.Errorf("the boot loader: %w", err)
	}
	espImg := filepath.Join(work, "esp.img")
	espSize, err := e.makeESP(espImg, append(files, loader...), d.when)
	if err != nil {
		return nil, fmt.Errorf("the EFI system partition: %w", err)
	}
	e.opt.Report(fmt.Sprintf("  EFI system partition: %s with %s in %s", bytesize.Human(espSize), from, time.Since(start).Round(time.Millisecond)))

	// The root partition: when the disk's size is given, the root takes
	// what the ESP and the partition table leave of it.
	var rootTarget int64
	if d.opt.Size > 0 {
		rootTarget = (d.opt.Size - espSize - 2*gptAlign) / gptAlign * gptAlign
		if rootTarget <= 0 {
			return nil, fmt.Errorf("disk.size %s leaves no room for the root partition beside the %s ESP", bytesize.Human(d.opt.Size), bytesize.Human(espSize))
		}
	}
	rootImg := filepath.Join(work, "root.img")
	start = time.Now()
	rootSize, err := e.rootPartition(root, rootImg, d, rootTarget)
	if err != nil {
		return nil, fmt.Errorf("the root partition: %w", err)
	}
	e.opt.Report(fmt.Sprintf("  root partition (%s): %s in %s", d.opt.RootFilesystem, bytesize.Human(rootSize), time.Since(start).Round(time.Millisecond)))
	if rootTarget > 0 {
		if rootSize > rootTarget {
			return nil, fmt.Errorf("disk.size %s is too small: the root file system needs %s beside the %s ESP; make the disk at least %d MiB", bytesize.Human(d.opt.Size), bytesize.Human(rootSize), bytesize.Human(espSize), (rootSize+espSize+2*gptAlign)>>20)
		}
		rootSize = rootTarget
	}

	parts := []partition{
		{name: "esp", typ: ESPType, uuid: d.espUUID, img: espImg, size: espSize},
		{name: d.boot.RootName, typ: d.boot.RootType, uuid: d.rootUUID, img: rootImg, size: alignUp(rootSize, gptAlign),
			readOnly: d.opt.RootFilesystem == RootSquashfs},
	}
	total, err := e.assembleGPT(tmp, d.diskGUID, parts)
	if err != nil {
		return nil, fmt.Errorf("the partition table: %w", err)
	}
	e.opt.Report(fmt.Sprintf("  GPT: %s, disk %s, ESP %s, root %s", bytesize.Human(total), d.diskGUID, d.espUUID, d.rootUUID))
	out, err := finishFile(tmp, final, "disk")
	if err != nil {
		return nil, err
	}
	outs := []Output{out}
	if d.opt.QCOW2 {
		q, err := e.qcow2(final)
		if err != nil {
			return nil, err
		}
		outs = append(outs, q)
	}
	return outs, nil
}

// diskPartFiles are the files a disk export writes in its temporary
// directory.
var diskPartFiles = []string{"linux", "initrd", "esp.img", "root.img", "BOOTX64.EFI", "BOOTAA64.EFI", "grub-embedded.cfg",
	"loader.conf", "entry.conf", "fstab", "debugfs.cmd", "strata-overlay-dirs.service"}

// qcow2 converts the raw disk to disk.qcow2 (holes stay unallocated).
func (e *exporter) qcow2(raw string) (Output, error) {
	final := filepath.Join(e.outDir, FileName(QCOW2Format))
	tmp := tmpName(e.outDir, QCOW2Format)
	os.Remove(tmp)
	defer e.temp(tmp)()
	if err := e.run("qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", raw, tmp); err != nil {
		os.Remove(tmp)
		return Output{}, err
	}
	return finishFile(tmp, final, QCOW2Format)
}
