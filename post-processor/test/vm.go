package test

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/strata-build/packer-plugin-strata/boot"
)

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
