package chroot

import (
	"context"
	"fmt"
	"log"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/multistep"

	"github.com/strata-build/packer-plugin-strata/boot"
	"github.com/strata-build/packer-plugin-strata/export"
	"github.com/strata-build/packer-plugin-strata/internal/ticker"
)

// bootCheckProgress is how often the UI hears that a boot is still going.
const bootCheckProgress = 15 * time.Second

// stepBootCheck boots the exported disk under QEMU when bootcheck is
// enabled, fails the build with the console's tail unless the expected line
// appears in time, and records the result in artifact.json. boot.Check
// kills its VM before it returns, whatever happened: there is nothing to
// clean up.
//
// Uses cfg, host, ledger, artifact; rewrites artifact.json.
type stepBootCheck struct{}

func (s *stepBootCheck) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	b := buildOf(state)
	cfg := b.cfg
	if cfg.Bootcheck == nil || !cfg.Bootcheck.Enabled {
		return multistep.ActionContinue
	}
	ui := uiOf(state)
	art := b.artifact
	disk := ""
	for _, o := range art.Outputs {
		if o.Format == "disk" {
			disk = o.Path
		}
	}
	if disk == "" {
		return halt(state, fmt.Errorf("bootcheck: the export wrote no %s to boot", export.FileName("disk")))
	}
	bc := cfg.Bootcheck
	ui.Say(fmt.Sprintf("Boot check: booting %s (%s) under QEMU (accel %s, timeout %s) ...", filepath.Base(disk), cfg.Architecture, bc.Accel, bc.timeout))

	// The console goes to Packer's log (PACKER_LOG=1); the UI hears how
	// long the boot has run and its latest line.
	con := &consoleLog{}
	defer ticker.Every(bootCheckProgress, func(elapsed time.Duration) {
		ui.Message(fmt.Sprintf("still booting, %s elapsed; console: %s", elapsed.Round(time.Second), con.last()))
	})()
	// QEMU and the firmware as the host seam finds them (Prepare checked
	// they are there).
	program, _, err := boot.QEMUFor(cfg.Architecture)
	if err != nil {
		return halt(state, fmt.Errorf("bootcheck: %w", err))
	}
	qemu, err := b.host.LookPath(program)
	if err != nil {
		return halt(state, fmt.Errorf("bootcheck: %w", err))
	}
	code, vars, err := boot.FindFirmwareFor(b.host.Root(), cfg.Architecture)
	if err != nil {
		return halt(state, fmt.Errorf("bootcheck: %w", err))
	}
	res, err := boot.Check(ctx, boot.Options{
		Arch:      cfg.Architecture,
		QEMU:      qemu,
		Firmware:  code,
		Vars:      vars,
		Disk:      disk,
		Timeout:   bc.timeout,
		Expect:    bc.Expect,
		MemoryMiB: bc.Memory,
		Accel:     bc.Accel,
		Console:   con,
		Tracker:   b.ledger,
	})
	if err != nil {
		return halt(state, fmt.Errorf("bootcheck of %s: %w", filepath.Base(disk), err))
	}
	ui.Message(fmt.Sprintf("Boot check passed under %s: %q after %s from the kernel's start (%s), %s in all",
		res.Accel, res.Matched, res.BootTime.Round(time.Millisecond), res.BootTimeSource, res.Total.Round(time.Millisecond)))
	if res.Retries > 0 {
		ui.Message(fmt.Sprintf("Boot check: %d earlier boot(s) of this disk failed at the kernel's timer check under emulation (a busy host), and were retried", res.Retries))
	}

	art.manifest.BootCheck = &export.BootCheck{
		Passed:         true,
		Disk:           filepath.Base(disk),
		Accel:          res.Accel,
		BootTimeMS:     res.BootTime.Milliseconds(),
		BootTimeSource: res.BootTimeSource,
		TotalMS:        res.Total.Milliseconds(),
		Expect:         bc.Expect,
	}
	if err := export.WriteManifest(art.OutputDir, &art.manifest); err != nil {
		return halt(state, fmt.Errorf("writing %s: %w", export.ManifestName, err))
	}
	return multistep.ActionContinue
}

func (s *stepBootCheck) Cleanup(multistep.StateBag) {}

// consoleLog writes the VM's console to Packer's log and keeps its latest
// line for the progress messages.
type consoleLog struct {
	mu   sync.Mutex
	line string
}

func (c *consoleLog) Write(p []byte) (int, error) {
	l := strings.TrimRight(string(p), "\n")
	log.Printf("bootcheck console: %s", l)
	c.mu.Lock()
	c.line = l
	c.mu.Unlock()
	return len(p), nil
}

func (c *consoleLog) last() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.line == "" {
		return "(nothing yet)"
	}
	if len(c.line) > 120 {
		return c.line[:120] + "…"
	}
	return c.line
}
