package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/strata-build/packer-plugin-strata/boot"
	"github.com/strata-build/packer-plugin-strata/internal/hint"
)

// bootResult is what `strata boot --json` prints.
type bootResult struct {
	Disk           string   `json:"disk"`
	Passed         bool     `json:"passed"`
	Accel          string   `json:"accel"`
	BootTimeMS     int64    `json:"boot_time_ms"`
	BootTimeSource string   `json:"boot_time_source"`
	TotalMS        int64    `json:"total_ms"`
	Expect         string   `json:"expect"`
	Matched        string   `json:"matched"`
	Console        []string `json:"console"`
}

func bootCmd(g *globals) *cobra.Command {
	opt := boot.Options{}
	var console bool
	cmd := &cobra.Command{
		Use:   "boot DISK",
		Short: "Boot a disk image under QEMU (UEFI, serial console, no network) and wait for multi-user.target",
		Long: "Boots DISK (raw, or qcow2 when its name ends in .qcow2) under qemu-system-x86_64 with OVMF (qemu-system-aarch64 with AAVMF\n" +
			"for --arch arm64), never writing to it,\n" +
			"and passes when the console shows --expect within --timeout. KVM is used when a probe boot under it works, TCG otherwise.\n" +
			"On failure it exits 1 and prints the console's last 50 lines.",
		Args: args(1, "a disk image"),
		RunE: func(cmd *cobra.Command, a []string) error {
			opt.Disk = a[0]
			if err := boot.ValidAccel(opt.Accel); err != nil {
				return usageError{fmt.Errorf("--accel: %w", err)}
			}
			if opt.Timeout <= 0 {
				return usageError{errors.New("--timeout must be positive (e.g. 2m)")}
			}
			if _, err := os.Stat(opt.Disk); err != nil {
				return usageError{err}
			}
			if opt.QEMU == "" {
				prog, pkg, err := boot.QEMUFor(opt.Arch)
				if err != nil {
					return usageError{fmt.Errorf("--arch: %w", err)}
				}
				if _, err := exec.LookPath(prog); err != nil {
					return fmt.Errorf("boot: %s not found in PATH (install the Debian package %s)", prog, pkg)
				}
			}
			if console {
				// Beside the result, not in it: stdout stays a table or JSON.
				opt.Console = os.Stderr
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			res, err := boot.Check(ctx, opt)
			if err != nil {
				var be *boot.Error
				if !errors.As(err, &be) {
					return err
				}
				// What to run next: watch the whole console, or leave
				// KVM out when it was what broke.
				h := hint.Command("boot", "--console", opt.Disk)
				if strings.Contains(be.Reason, "KVM") {
					h = hint.Command("boot", "--accel", "tcg", opt.Disk)
				}
				if g.json {
					return hint.With(err, h)
				}
				// The tail as lines, the error itself on one.
				if !console {
					fmt.Fprintf(os.Stderr, "last %d console lines:\n", len(be.Console))
					for _, l := range be.Console {
						fmt.Fprintln(os.Stderr, "  "+esc(l))
					}
				}
				for _, l := range be.Stderr {
					fmt.Fprintln(os.Stderr, "qemu: "+esc(l))
				}
				reason := "boot check failed: " + be.Reason
				if be.Accel != "" {
					reason += " (accel " + be.Accel + ")"
				}
				return hint.With(errors.New(reason), h)
			}
			out := bootResult{Disk: opt.Disk, Passed: true, Accel: res.Accel, BootTimeMS: res.BootTime.Milliseconds(),
				BootTimeSource: res.BootTimeSource, TotalMS: res.Total.Milliseconds(), Expect: opt.Expect,
				Matched: res.Matched, Console: res.Console}
			return g.emit(out, func(w *tabwriter.Writer) {
				fmt.Fprintf(w, "passed\t%s\n", esc(res.Matched))
				fmt.Fprintf(w, "accel\t%s\n", res.Accel)
				fmt.Fprintf(w, "boot time\t%s\t(kernel start → match, from %s)\n", res.BootTime.Round(time.Millisecond), res.BootTimeSource)
				fmt.Fprintf(w, "total\t%s\t(qemu start → match)\n", res.Total.Round(time.Millisecond))
			})
		},
	}
	f := cmd.Flags()
	f.DurationVar(&opt.Timeout, "timeout", boot.DefaultTimeout, "the whole boot's time limit")
	f.StringVar(&opt.Expect, "expect", boot.DefaultExpect, "regular expression of the console line that means the system is up")
	f.StringVar(&opt.Accel, "accel", boot.AccelAuto, "auto (KVM when a probe boot under it works, else TCG), kvm or tcg")
	f.IntVar(&opt.MemoryMiB, "memory", boot.DefaultMemoryMiB, "the VM's memory in MiB")
	f.StringVar(&opt.Firmware, "firmware", "", "OVMF code file (default Debian's ovmf: /usr/share/OVMF/OVMF_CODE_4M.fd)")
	f.StringVar(&opt.QEMU, "qemu", "", "the QEMU program (default qemu-system-x86_64 from PATH, qemu-system-aarch64 for --arch arm64)")
	f.StringVar(&opt.Arch, "arch", "amd64", "the disk's Debian architecture: amd64 (q35, OVMF) or arm64 (virt, AAVMF, TCG)")
	f.BoolVar(&console, "console", false, "copy the serial console to stderr as it comes")
	return cmd
}
