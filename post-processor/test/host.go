package test

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/strata-build/packer-plugin-strata/boot"
	"github.com/strata-build/packer-plugin-strata/internal/hostexec"
	"github.com/strata-build/packer-plugin-strata/internal/inroot"
	"github.com/strata-build/packer-plugin-strata/internal/mount"
	"github.com/strata-build/packer-plugin-strata/layer"
)

// job is one run of the runner against an image.
type job struct {
	Mode string
	// Dir holds run.sh, the cases' scripts and scripts/ (writeJob).
	Dir string
	// Lowers are the image's trees, top first (container mode).
	Lowers []string
	// Disk is the raw disk to boot (vm mode).
	Disk        string
	Timeout     time.Duration
	MemoryMiB   int
	Accel, QEMU string
	Live        func(string) // each line, as it comes (nil: none)
}

// outcome is what a run printed, and in vm mode how the boot went.
type outcome struct {
	Lines    []string
	Accel    string
	Boot     time.Duration // QEMU's start to multi-user.target (READY)
	Checks   time.Duration // the checks themselves
	Started  time.Time
	Finished time.Time
}

// runner runs a job on the host: the seam the post-processor's tests fake.
type runner interface {
	run(ctx context.Context, j job) (*outcome, error)
}

// hostRunner is the real one.
type hostRunner struct{}

func (hostRunner) run(ctx context.Context, j job) (*outcome, error) {
	if j.Mode == ModeVM {
		return runVM(ctx, j)
	}
	return runContainer(ctx, j)
}

// lineSink collects lines (a VM's console arrives through an io.Writer).
type lineSink struct {
	mu      sync.Mutex
	lines   []string
	partial []byte
	live    func(string)
	seen    func(string)
}

func (s *lineSink) add(l string) {
	s.mu.Lock()
	s.lines = append(s.lines, l)
	s.mu.Unlock()
	if s.seen != nil {
		s.seen(l)
	}
	if s.live != nil {
		s.live(l)
	}
}

func (s *lineSink) Write(p []byte) (int, error) {
	s.partial = append(s.partial, p...)
	for {
		i := bytes.IndexByte(s.partial, '\n')
		if i < 0 {
			break
		}
		s.add(strings.TrimRight(string(s.partial[:i]), "\r"))
		s.partial = s.partial[i+1:]
	}
	return len(p), nil
}

// --- container mode ---

// runContainer runs the runner with chroot in an overlay of the image's
// trees (read-only lowers) with a tmpfs upper: every write a check makes
// lands in memory and is gone with it. Every mount is written down in a
// ledger in the run's temporary directory and taken down, children first;
// every process whose root is the overlay is killed before.
func runContainer(ctx context.Context, j job) (_ *outcome, err error) {
	tmp, err := os.MkdirTemp("", "strata-test-")
	if err != nil {
		return nil, err
	}
	ledger, err := mount.NewLedger(tmp)
	if err != nil {
		os.RemoveAll(tmp)
		return nil, err
	}
	root := filepath.Join(tmp, "root")
	var recs []mount.MountRecord
	defer func() {
		if _, kerr := mount.KillRootedUnder(root, 2*time.Second); kerr != nil && err == nil {
			err = kerr
		}
		slices.Reverse(recs)
		if _, uerr := mount.UnmountRecorded(ledger, recs); uerr != nil {
			if err == nil {
				err = uerr
			}
			return // leave the directory (and ledger) for whoever looks
		}
		ledger.Close()
		os.RemoveAll(tmp)
	}()
	scratch := filepath.Join(tmp, "scratch")
	for _, d := range []string{root, scratch} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return nil, err
		}
	}
	r, err := mount.MountRecorded(ledger, mount.Spec{FSType: "tmpfs", Source: "strata-test", Target: scratch, Options: "nosuid,nodev,mode=0700"})
	if err != nil {
		return nil, fmt.Errorf("mounting the tmpfs for the overlay's upper dir: %w", err)
	}
	recs = append(recs, *r)
	upper, work := filepath.Join(scratch, "upper"), filepath.Join(scratch, "work")
	for _, d := range []string{upper, work} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return nil, err
		}
	}
	r, err = mount.MountRecorded(ledger, mount.Spec{FSType: "overlay", Source: "strata-test", Target: root, Options: layer.OverlayOptions(j.Lowers, upper, work)})
	if err != nil {
		return nil, fmt.Errorf("mounting the image's overlay: %w", err)
	}
	recs = append(recs, *r)
	img, err := inroot.Open(root)
	if err != nil {
		return nil, err
	}
	defer img.Close()
	for _, s := range []mount.Spec{
		{FSType: "proc", Source: "proc", Target: "/proc", Options: "nosuid,nodev,noexec"},
		{FSType: "bind", Source: "/dev", Target: "/dev", Options: "ro,nosuid,noexec"},
		{FSType: "tmpfs", Source: "run", Target: "/run", Options: "nosuid,nodev,mode=0755"},
		{FSType: "tmpfs", Source: "tmp", Target: "/tmp", Options: "nosuid,nodev,mode=1777"},
		{FSType: "bind", Source: j.Dir, Target: GuestDir, Options: "ro,nosuid,nodev"},
	} {
		r, err := mountIn(img, ledger, s)
		if err != nil {
			return nil, err
		}
		recs = append(recs, *r)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	runCtx, cancel := context.WithTimeout(ctx, j.Timeout)
	defer cancel()
	sink := &lineSink{live: j.Live}
	out := &outcome{Started: time.Now()}
	cmd := hostexec.Command(runCtx, "chroot", root, "/bin/sh", GuestDir+"/run.sh", ModeContainer)
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C", "HOME=/root", "TERM=dumb"}
	cmd.Dir = "/"
	rerr := hostexec.Lines(cmd, ledger, sink.add)
	out.Finished = time.Now()
	out.Checks = out.Finished.Sub(out.Started)
	out.Lines = sink.lines
	if runCtx.Err() == context.DeadlineExceeded && ctx.Err() == nil {
		return out, fmt.Errorf("the run took longer than timeout = %s", j.Timeout)
	}
	if ctx.Err() != nil {
		return out, ctx.Err()
	}
	if rerr != nil && !parseLines(out.Lines).end {
		return out, fmt.Errorf("the runner failed: %w", rerr)
	}
	return out, nil
}

// mountIn mounts s at its target inside the image, resolved without
// following any of the image's links out of it.
func mountIn(img *inroot.Root, ledger *mount.Ledger, s mount.Spec) (*mount.MountRecord, error) {
	at, _, err := img.MkdirAll(s.Target, 0o755)
	if err != nil {
		return nil, fmt.Errorf("%s in the image: %w", s.Target, err)
	}
	defer at.Close()
	host, err := img.HostPath(at)
	if err != nil {
		return nil, err
	}
	if err := ledger.Intend(host, s.FSType); err != nil {
		return nil, err
	}
	spec := s
	spec.Target = host
	if err := mount.MountAt(spec, at, func() (*os.File, error) { return img.OpenPath(s.Target) }); err != nil {
		ledger.Unmounted(host)
		return nil, fmt.Errorf("mounting %s at %s in the image: %w", s.FSType, s.Target, err)
	}
	id, err := mount.IDAt(host)
	if err != nil {
		return nil, err
	}
	if err := ledger.Mounted(host, id); err != nil {
		return nil, err
	}
	return &mount.MountRecord{Target: host, FSType: s.FSType, ID: id}, nil
}

// --- vm mode ---

// The kernel command line's additions in vm mode: systemd-run-generator
// makes the runner the boot's goal (it first starts multi-user.target
// itself), and powers off after it. The runner and the checks come on a
// second, read-only disk holding a tar (/dev/vdb).
const vmAppend = `systemd.run="/bin/sh -c 'tar -xf /dev/vdb -C /run && exec /bin/sh ` + GuestDir + `/run.sh vm'" ` +
	`systemd.run_success_action=poweroff systemd.run_failure_action=poweroff systemd.show_status=error`

func runVM(ctx context.Context, j job) (*outcome, error) {
	tmp, err := os.MkdirTemp("", "strata-test-vm-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	bf, err := bootFiles(ctx, j.Disk, tmp)
	if err != nil {
		return nil, err
	}
	drive := filepath.Join(tmp, "tests.tar")
	if err := tarDir(j.Dir, drive); err != nil {
		return nil, err
	}
	qemu := j.QEMU
	if qemu == "" {
		if qemu, err = boot.FindQEMU(); err != nil {
			return nil, err
		}
	}
	accel := j.Accel
	if accel == "" || accel == boot.AccelAuto {
		accel = boot.AccelTCG
		if code, vars, err := boot.FindFirmware(); err == nil && boot.ProbeKVM(ctx, qemu, code, vars, nil) {
			accel = boot.AccelKVM
		}
	}
	out := &outcome{Accel: accel}
	var ready time.Time
	sink := &lineSink{live: j.Live, seen: func(l string) {
		if ready.IsZero() && strings.Contains(l, Marker+"READY") {
			ready = time.Now()
		}
	}}
	start := time.Now()
	_, berr := boot.Check(ctx, boot.Options{
		Disk: j.Disk, Kernel: bf.kernel, Initrd: bf.initrd, Append: bf.cmdline + " " + vmAppend, Drives: []string{drive},
		Timeout: j.Timeout, Expect: regexp.QuoteMeta(Marker) + "END", MemoryMiB: j.MemoryMiB, Accel: accel, QEMU: qemu, Console: sink,
	})
	end := time.Now()
	out.Lines = sink.lines
	out.Started, out.Finished = start, end
	if !ready.IsZero() {
		out.Boot, out.Checks = ready.Sub(start), end.Sub(ready)
	} else {
		out.Boot = end.Sub(start)
	}
	if berr != nil {
		var be *boot.Error
		if errors.As(berr, &be) {
			return out, fmt.Errorf("vm: %s (accel %s)\nlast console lines:\n%s", be.Reason, accel, strings.Join(tail(be.Console, 20), "\n"))
		}
		return out, fmt.Errorf("vm: %w", berr)
	}
	return out, nil
}

func tail(l []string, n int) []string {
	if len(l) > n {
		return l[len(l)-n:]
	}
	return l
}

// tarDir writes dir as a tar of strata-test/..., padded to whole sectors.
func tarDir(dir, dst string) error {
	f, err := os.Create(dst)
	if err != nil {
		return err
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	err = filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		name := filepath.ToSlash(filepath.Join(filepath.Base(GuestDir), rel))
		h := &tar.Header{Name: name, Mode: int64(fi.Mode().Perm()), ModTime: time.Unix(0, 0), Format: tar.FormatUSTAR}
		if fi.IsDir() {
			h.Typeflag, h.Name = tar.TypeDir, name+"/"
			return tw.WriteHeader(h)
		}
		if !fi.Mode().IsRegular() {
			return nil
		}
		h.Typeflag, h.Size = tar.TypeReg, fi.Size()
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		src, err := os.Open(p)
		if err != nil {
			return err
		}
		defer src.Close()
		_, err = io.Copy(tw, src)
		return err
	})
	if err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	// Whole 64 KiB: a disk of a round size.
	if fi, err := f.Stat(); err == nil && fi.Size()%(64<<10) != 0 {
		return f.Truncate((fi.Size()/(64<<10) + 1) * (64 << 10))
	}
	return nil
}

// bootEntry is what the disk's ESP boots.
type bootEntry struct {
	kernel, initrd, cmdline string
}

// The GPT type of an EFI system partition.
const espType = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"

// bootFiles copies the kernel and initramfs the disk's boot loader boots
// out of its EFI system partition (mtools, reading the file only) into
// tmp, with their command line: systemd-boot's loader entry, or the
// configuration built into a GRUB image.
func bootFiles(ctx context.Context, disk, tmp string) (*bootEntry, error) {
	out, err := hostexec.Output(hostexec.Command(ctx, "sfdisk", "--json", disk), nil)
	if err != nil {
		return nil, fmt.Errorf("vm: reading the disk's partition table: %w", err)
	}
	var pt struct {
		PartitionTable struct {
			SectorSize int64 `json:"sectorsize"`
			Partitions []struct {
				Start int64  `json:"start"`
				Type  string `json:"type"`
				UUID  string `json:"uuid"`
			} `json:"partitions"`
		} `json:"partitiontable"`
	}
	if err := json.Unmarshal(out, &pt); err != nil {
		return nil, fmt.Errorf("vm: sfdisk --json %s: %w", disk, err)
	}
	sector := pt.PartitionTable.SectorSize
	if sector == 0 {
		sector = 512
	}
	espAt := int64(-1)
	rootUUID := ""
	for _, p := range pt.PartitionTable.Partitions {
		if strings.EqualFold(p.Type, espType) {
			espAt = p.Start * sector
		} else if rootUUID == "" {
			rootUUID = strings.ToLower(p.UUID)
		}
	}
	if espAt < 0 {
		return nil, fmt.Errorf("vm: %s has no EFI system partition: is it strata-chroot's disk output?", disk)
	}
	img := disk + "@@" + strconv.FormatInt(espAt, 10)
	mtools := func(name string, args ...string) ([]byte, error) {
		cmd := hostexec.Command(ctx, name, append([]string{"-i", img}, args...)...)
		cmd.Env = append(cmd.Env, "MTOOLS_SKIP_CHECK=1")
		return hostexec.Output(cmd, nil)
	}
	copyOut := func(src, dst string) error {
		_, err := mtools("mcopy", "-n", "::"+src, dst)
		return err
	}
	var text string
	if list, err := mtools("mdir", "-b", "::/loader/entries"); err == nil {
		var entries []string
		for _, l := range strings.Split(string(list), "\n") {
			if l = strings.TrimSpace(l); strings.HasSuffix(l, ".conf") {
				entries = append(entries, l)
			}
		}
		if len(entries) == 0 {
			return nil, fmt.Errorf("vm: the disk's ESP has no systemd-boot loader entry")
		}
		slices.Sort(entries)
		src := entries[0]
		if i := strings.Index(src, "/loader/entries/"); i >= 0 {
			src = src[i:]
		}
		dst := filepath.Join(tmp, "entry.conf")
		if err := copyOut(src, dst); err != nil {
			return nil, fmt.Errorf("vm: %w", err)
		}
		b, err := os.ReadFile(dst)
		if err != nil {
			return nil, err
		}
		text = string(b)
	} else {
		dst := filepath.Join(tmp, "BOOTX64.EFI")
		if err := copyOut("/EFI/BOOT/BOOTX64.EFI", dst); err != nil {
			return nil, fmt.Errorf("vm: the disk's ESP has neither systemd-boot's loader entries nor a boot loader: %w", err)
		}
		b, err := os.ReadFile(dst)
		if err != nil {
			return nil, err
		}
		text = grubConfig(b)
	}
	e, err := parseEntry(text)
	if err != nil {
		return nil, fmt.Errorf("vm: %w", err)
	}
	if e.cmdline == "" && rootUUID != "" {
		e.cmdline = "root=PARTUUID=" + rootUUID + " ro console=ttyS0"
	}
	k, i := filepath.Join(tmp, "linux"), filepath.Join(tmp, "initrd")
	if err := copyOut(e.kernel, k); err != nil {
		return nil, fmt.Errorf("vm: the kernel: %w", err)
	}
	e.kernel = k
	if e.initrd != "" {
		if err := copyOut(e.initrd, i); err != nil {
			return nil, fmt.Errorf("vm: the initramfs: %w", err)
		}
		e.initrd = i
	}
	return e, nil
}

// grubConfig finds the "linux" and "initrd" lines of the configuration
// grub-mkimage built into a GRUB image.
func grubConfig(b []byte) string {
	var lines []string
	for _, l := range bytes.Split(b, []byte("\n")) {
		s := string(bytes.TrimSpace(l))
		if strings.HasPrefix(s, "linux /") || strings.HasPrefix(s, "initrd /") {
			lines = append(lines, s)
		}
	}
	return strings.Join(lines, "\n")
}

// parseEntry reads a loader entry's (or GRUB's) linux, initrd and options.
func parseEntry(text string) (*bootEntry, error) {
	e := &bootEntry{}
	for _, l := range strings.Split(text, "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "linux":
			e.kernel = f[1]
			if len(f) > 2 {
				e.cmdline = strings.Join(f[2:], " ")
			}
		case "initrd":
			if e.initrd == "" {
				e.initrd = f[1]
			}
		case "options":
			e.cmdline = strings.Join(f[1:], " ")
		}
	}
	if e.kernel == "" || !strings.HasPrefix(e.kernel, "/") || strings.Contains(e.kernel, "..") || strings.Contains(e.initrd, "..") {
		return nil, fmt.Errorf("the disk's boot loader names no kernel on its ESP")
	}
	return e, nil
}
