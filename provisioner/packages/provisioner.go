// Package packages is the strata-packages provisioner: apt installs,
// removals, upgrades and holds, with a lock file, over any Packer
// communicator to a Debian-family system.
package packages

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2/hcldec"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
	"github.com/hashicorp/packer-plugin-sdk/template/interpolate"

	"github.com/strata-build/packer-plugin-strata/internal/apt"
	"github.com/strata-build/packer-plugin-strata/internal/dpkg"
)

// Provisioner is strata-packages.
type Provisioner struct {
	config Config
}

func (p *Provisioner) ConfigSpec() hcldec.ObjectSpec { return p.config.FlatMapstructure().HCL2Spec() }

func (p *Provisioner) Prepare(raws ...interface{}) error { return p.config.Prepare(raws...) }

// Provision runs, in order: apt-get update, remove, upgrade, install (from
// the lock file when there is one), hold; then it writes the lock file when
// it resolved one.
func (p *Provisioner) Provision(ctx context.Context, ui packersdk.Ui, comm packersdk.Communicator, _ map[string]interface{}) error {
	c := &p.config
	sh := &shell{comm: comm, ui: ui, config: c}
	start := time.Now()

	out, status, err := sh.quiet(ctx, probeCommand)
	if err != nil {
		return err
	}
	native := strings.TrimSpace(out)
	if status == probeMissing {
		return fmt.Errorf("strata-packages needs a Debian-family system: %s is missing on the machine the communicator reaches", native)
	}
	if status != 0 || !dpkg.ValidName(native) {
		return fmt.Errorf("strata-packages needs a Debian-family system: checking for apt-get, dpkg-query and apt-mark and running dpkg --print-architecture said %q (exit %d)", native, status)
	}

	if c.LockFile != "" {
		real, err := lockPath(c.LockFile)
		if err != nil {
			return err
		}
		c.LockFile = real
	}
	var lock *Lock
	if c.LockFile != "" && !c.UpdateLock {
		if lock, err = ReadLock(c.LockFile); err != nil {
			return fmt.Errorf("lock_file: %w", err)
		}
		if lock != nil {
			if got, want := requestKey(c.Install), lock.Install; !slices.Equal(got, want) || lock.Upgrade != c.Upgrade {
				return fmt.Errorf("lock_file %s was resolved for install = %v (upgrade = %v); the template now asks for %v (upgrade = %v): set update_lock = true to resolve again",
					c.LockFile, want, lock.Upgrade, got, c.Upgrade)
			}
			ui.Say(fmt.Sprintf("Installing the %d package version(s) locked in %s", len(lock.Packages), c.LockFile))
		}
	}

	// The fast path needs neither package indexes nor apt's resolver.
	fast := lock != nil && len(c.Remove) == 0 && lock.fastPathReady()
	updated := false
	update := func() error {
		if updated {
			return nil
		}
		updated = true
		need, why, err := sh.needUpdate(ctx)
		if err != nil {
			return err
		}
		if !need {
			ui.Say("Not updating the package indexes: " + why)
			return nil
		}
		ui.Say("Updating the package indexes (apt-get update) ...")
		t := time.Now()
		if err := sh.apt(ctx, "apt-get update", apt.Get("update")); err != nil {
			return err
		}
		ui.Message(fmt.Sprintf("apt-get update took %s", time.Since(t).Round(time.Millisecond)))
		return nil
	}
	if fast {
		ui.Say("Not updating the package indexes: lock_file records every package's .deb and sha256 (no resolver needed)")
	} else if err := update(); err != nil {
		return err
	}
	before, err := sh.installed(ctx)
	if err != nil {
		return err
	}
	if len(c.Remove) > 0 {
		ui.Say("Removing " + strings.Join(c.Remove, " ") + " ...")
		if err := sh.apt(ctx, "remove", apt.Get(append([]string{"purge", "--auto-remove"}, c.Remove...)...)); err != nil {
			return err
		}
	}
	// Installing from the lock covers what upgrade did when it was made.
	if c.Upgrade && lock == nil {
		ui.Say("Upgrading the installed packages (apt-get upgrade) ...")
		if err := sh.apt(ctx, "upgrade", apt.Get("upgrade")); err != nil {
			return err
		}
	}
	recommends := "--no-install-recommends"
	if !*c.NoInstallRecommends {
		recommends = "--install-recommends"
	}
	switch {
	case lock != nil && len(lock.Packages) > 0:
		auto, present, err := sh.autoInstalled(ctx)
		if err != nil {
			return err
		}
		done := false
		if fast {
			if done, err = sh.fastInstall(ctx, lock, before); err != nil {
				return err
			}
		}
		if !done {
			if err := update(); err != nil {
				return err
			}
			specs := make([]string, 0, len(lock.Packages))
			for _, l := range lock.Packages {
				specs = append(specs, l.spec(native))
			}
			args := append([]string{"install", recommends, "--allow-downgrades"}, specs...)
			if err := sh.apt(ctx, "install from lock_file "+c.LockFile, apt.Get(args...)); err != nil {
				return lockError(c.LockFile, err)
			}
		}
		// Naming a dependency marks it manually installed: put back the
		// automatic mark it had, or would have had without the lock.
		var mark []string
		for _, l := range lock.Packages {
			if !l.Requested {
				if _, had := before[l.key()]; !had || auto[l.key()] {
					mark = append(mark, l.Name+":"+l.Architecture)
				}
			}
		}
		if len(mark) > 0 {
			// dpkg -i marked nothing: a package with no entry yet is
			// appended; otherwise apt-mark.
			if cmd, ok := autoMarkCommand(mark, present); done && ok {
				if err := sh.apt(ctx, "marking automatically installed", cmd); err != nil {
					return err
				}
			} else if err := sh.apt(ctx, "apt-mark auto", "apt-mark auto "+strings.Join(mark, " ")); err != nil {
				return err
			}
		}
	case len(c.Install) > 0:
		ui.Say("Installing " + strings.Join(c.Install, " ") + " ...")
		if err := sh.apt(ctx, "install", apt.Get(append([]string{"install", recommends}, c.Install...)...)); err != nil {
			return err
		}
	}
	if len(c.Hold) > 0 {
		if err := sh.apt(ctx, "hold", "apt-mark hold "+strings.Join(c.Hold, " ")); err != nil {
			return err
		}
	}
	after, err := sh.installed(ctx)
	if err != nil {
		return err
	}

	if lock != nil {
		if extra := unlocked(before, after, lock); len(extra) > 0 {
			return fmt.Errorf("lock_file %s: installing the locked versions also changed packages the lock does not list: %s (the parent image or the sources changed); set update_lock = true to resolve again",
				c.LockFile, strings.Join(extra, ", "))
		}
		for _, l := range lock.Packages {
			if got := after[l.key()]; got != l.Version {
				return fmt.Errorf("lock_file %s: %s is locked at %s but %q is installed", c.LockFile, l.Name, l.Version, got)
			}
		}
	} else if c.LockFile != "" {
		l := &Lock{
			LockVersion: LockVersion,
			Comment:     "Written by strata-packages: the exact versions install resolved. Set update_lock = true to resolve again.",
			Install:     requestKey(c.Install),
			Upgrade:     c.Upgrade,
			Packages:    closure(before, after, c.requests(), native),
		}
		sh.recordDebs(ctx, l.Packages, native)
		if err := WriteLock(c.LockFile, l); err != nil {
			return fmt.Errorf("lock_file: writing %s: %w", c.LockFile, err)
		}
		ui.Say(fmt.Sprintf("Wrote %s: %d package version(s)", c.LockFile, len(l.Packages)))
	}
	ui.Say(fmt.Sprintf("strata-packages done in %s: %s", time.Since(start).Round(time.Millisecond), summary(before, after)))
	return nil
}

// lockError says, for an install from a lock file, which locked package
// the mirror no longer has and what to do.
func lockError(lockFile string, err error) error {
	if strings.Contains(err.Error(), "is not available") || strings.Contains(err.Error(), "is unknown") {
		return fmt.Errorf("%w\nlock_file %s pins a version the apt sources no longer offer; set update_lock = true to resolve again", err, lockFile)
	}
	return err
}

// summary says what changed: installed, upgraded or downgraded, removed.
func summary(before, after installedSet) string {
	var added, changed, removed []string
	for k, v := range after {
		name, _, _ := strings.Cut(k, ":")
		switch old, had := before[k]; {
		case !had:
			added = append(added, name+" "+v)
		case old != v:
			changed = append(changed, name+" "+old+" -> "+v)
		}
	}
	for k := range before {
		if _, ok := after[k]; !ok {
			name, _, _ := strings.Cut(k, ":")
			removed = append(removed, name)
		}
	}
	var parts []string
	for _, g := range []struct {
		what  string
		names []string
	}{{"installed", added}, {"changed", changed}, {"removed", removed}} {
		if len(g.names) > 0 {
			sort.Strings(g.names)
			parts = append(parts, fmt.Sprintf("%d %s (%s)", len(g.names), g.what, strings.Join(g.names, ", ")))
		}
	}
	if len(parts) == 0 {
		return "nothing changed"
	}
	return strings.Join(parts, "; ")
}

// shell runs commands through the communicator, wrapped in
// execute_command.
type shell struct {
	comm   packersdk.Communicator
	ui     packersdk.Ui
	config *Config
}

func (s *shell) wrap(command string) (string, error) {
	ctx := s.config.ctx
	ctx.Data = struct{ Command string }{Command: command}
	out, err := interpolate.Render(s.config.ExecuteCommand, &ctx)
	if err != nil {
		return "", fmt.Errorf("execute_command: %w", err)
	}
	return out, nil
}

// quiet runs a command and returns its standard output, unshown.
func (s *shell) quiet(ctx context.Context, command string) (string, int, error) {
	wrapped, err := s.wrap(command)
	if err != nil {
		return "", 0, err
	}
	var stdout, stderr bytes.Buffer
	rc := &packersdk.RemoteCmd{Command: wrapped, Stdout: &stdout, Stderr: &stderr}
	if err := s.comm.Start(ctx, rc); err != nil {
		return "", 0, fmt.Errorf("running %q: %w", command, err)
	}
	done := make(chan int, 1)
	go func() { done <- rc.Wait() }()
	select {
	case status := <-done:
		return stdout.String(), status, nil
	case <-ctx.Done():
		return "", 0, ctx.Err()
	}
}

// apt runs an apt command with its output shown, and turns a failure into
// an error that names the package and the reason.
func (s *shell) apt(ctx context.Context, op, command string) error {
	wrapped, err := s.wrap(command)
	if err != nil {
		return err
	}
	// Apart: apt writes its E: lines to stderr, and a line of stdout may
	// be half written when one arrives.
	var stdout, stderr apt.Output
	rc := &packersdk.RemoteCmd{Command: wrapped, Stdout: &stdout, Stderr: &stderr}
	if err := rc.RunWithUi(ctx, s.comm, s.ui); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if status := rc.ExitStatus(); status != 0 {
		return apt.Error(op, status, stdout.String()+"\n"+stderr.String())
	}
	return nil
}

// probeCommand checks for the programs strata-packages drives and prints
// dpkg's architecture, in one round trip through the communicator (each
// costs tens of milliseconds); it exits probeMissing naming a missing one.
// One program, so that any execute_command wraps all of it.
const probeCommand = `sh -c 'for c in apt-get dpkg-query apt-mark; do command -v "$c" >/dev/null || { echo "$c"; exit 3; }; done; exec dpkg --print-architecture'`

const probeMissing = 3

// readStatusCommand reads the dpkg database in the image as the builder's
// readers do (inroot.ReadRegular): the last component not followed, opened
// without blocking (a FIFO has nothing to say and ends the read at once),
// and at most one block more than dpkg.MaxStatusSize, so an endless device
// ends too. One program, so that any execute_command wraps all of it.
var readStatusCommand = fmt.Sprintf("dd if=%s iflag=nonblock,nofollow bs=1M count=%d status=none", dpkg.StatusPath, dpkg.MaxStatusSize>>20+1)

// installed reads the dpkg database through the communicator.
func (s *shell) installed(ctx context.Context) (installedSet, error) {
	out, status, err := s.quiet(ctx, readStatusCommand)
	if err != nil {
		return nil, err
	}
	if status != 0 {
		return nil, fmt.Errorf("reading %s: exit %d (it must be a regular file)", dpkg.StatusPath, status)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("reading %s: it is empty or not a regular file (a FIFO, a device?); the image's dpkg database is broken", dpkg.StatusPath)
	}
	if len(out) > dpkg.MaxStatusSize {
		return nil, fmt.Errorf("reading %s: it is larger than %d bytes, more than a dpkg database ever holds", dpkg.StatusPath, dpkg.MaxStatusSize)
	}
	pkgs, err := dpkg.ReadStatus(strings.NewReader(out))
	if err != nil {
		return nil, fmt.Errorf("reading /var/lib/dpkg/status: %w", err)
	}
	set := installedSet{}
	for _, p := range pkgs {
		set[p.Name+":"+p.Architecture] = p.Version
	}
	return set, nil
}

// autoInstalled are the packages apt marks automatically installed, read
// from apt's extended_states (no quoting, so any execute_command works).
// present are all the packages the file has an entry for.
func (s *shell) autoInstalled(ctx context.Context) (auto, present map[string]bool, err error) {
	out, status, err := s.quiet(ctx, "cat /var/lib/apt/extended_states")
	if err != nil {
		return nil, nil, err
	}
	auto, present = map[string]bool{}, map[string]bool{}
	if status != 0 {
		return auto, present, nil // no file: nothing is marked automatic
	}
	for _, stanza := range strings.Split(out, "\n\n") {
		f := map[string]string{}
		for _, line := range strings.Split(stanza, "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok {
				f[k] = strings.TrimSpace(v)
			}
		}
		if f["Package"] != "" {
			present[f["Package"]+":"+f["Architecture"]] = true
		}
		if f["Auto-Installed"] == "1" && f["Package"] != "" {
			auto[f["Package"]+":"+f["Architecture"]] = true
		}
	}
	return auto, present, nil
}
