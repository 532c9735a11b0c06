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

	if c.LockFile != "" {
		real, err := lockPath(c.LockFile)
		if err != nil {
			return err
		}
		c.LockFile = real
	}
	var lock *Lock
	var err error
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
	// One round trip reads what the decisions below need; the lists apt
	// lacks and the shared indexes' description only when the update
	// option asks and the fast path may not do without them.
	st, err := sh.readState(ctx, c.Update != updateAlways && !fast)
	if err != nil {
		return err
	}
	native := st.native
	updated := false
	update := func() error {
		if updated {
			return nil
		}
		updated = true
		if !st.lists && c.Update != updateAlways {
			// The fast path did not work: read what it did without.
			if st, err = sh.readState(ctx, true); err != nil {
				return err
			}
		}
		need, why, err := needUpdate(c, st)
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
	before := st.installed
	// after is dpkg's database as the command that installs leaves it,
	// read in the same round trip; nil until then.
	var after installedSet
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
		// Naming a dependency marks it manually installed: put back the
		// automatic mark it had, or would have had without the lock.
		var mark []string
		for _, l := range lock.Packages {
			if !l.Requested {
				if _, had := before[l.key()]; !had || st.auto[l.key()] {
					mark = append(mark, l.Name+":"+l.Architecture)
				}
			}
		}
		// dpkg -i marks nothing: a package with no entry yet is appended
		// to extended_states by the same command; otherwise apt-mark.
		markCmd, appendable := autoMarkCommand(mark, st.present)
		done, marked := false, false
		if fast {
			// markCmd is "" when the marks cannot be appended.
			if after, err = sh.fastInstall(ctx, lock, before, markCmd); err != nil {
				return err
			}
			done, marked = after != nil, after != nil && appendable
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
			if after, err = sh.aptThenInstalled(ctx, "install from lock_file "+c.LockFile, apt.Get(args...)); err != nil {
				return lockError(c.LockFile, err)
			}
		}
		if len(mark) > 0 && !marked {
			// apt-mark changes no version: after stays right.
			if err := sh.apt(ctx, "apt-mark auto", "apt-mark auto "+strings.Join(mark, " ")); err != nil {
				return err
			}
		}
	case len(c.Install) > 0:
		ui.Say("Installing " + strings.Join(c.Install, " ") + " ...")
		if after, err = sh.aptThenInstalled(ctx, "install", apt.Get(append([]string{"install", recommends}, c.Install...)...)); err != nil {
			return err
		}
	}
	if len(c.Hold) > 0 {
		if err := sh.apt(ctx, "hold", "apt-mark hold "+strings.Join(c.Hold, " ")); err != nil {
			return err
		}
	}
	// A hold changes no version either.
	if after == nil {
		if after, err = sh.installed(ctx); err != nil {
			return err
		}
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
	out, _, status, err := s.quietBoth(ctx, command)
	return out, status, err
}

// quietBoth runs a command and returns its standard output and error,
// unshown.
func (s *shell) quietBoth(ctx context.Context, command string) (string, string, int, error) {
	wrapped, err := s.wrap(command)
	if err != nil {
		return "", "", 0, err
	}
	var stdout, stderr bytes.Buffer
	rc := &packersdk.RemoteCmd{Command: wrapped, Stdout: &stdout, Stderr: &stderr}
	if err := s.comm.Start(ctx, rc); err != nil {
		return "", "", 0, fmt.Errorf("running %q: %w", command, err)
	}
	done := make(chan int, 1)
	go func() { done <- rc.Wait() }()
	select {
	case status := <-done:
		return stdout.String(), stderr.String(), status, nil
	case <-ctx.Done():
		return "", "", 0, ctx.Err()
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

// readState runs the state command: with lists, it also reads the
// package lists apt lacks and strata-chroot's description of its shared
// indexes.
func (s *shell) readState(ctx context.Context, lists bool) (*imageState, error) {
	marker := newMarker()
	out, errOut, status, err := s.quietBoth(ctx, stateCommand(marker, lists))
	if err != nil {
		return nil, err
	}
	if status == probeMissing {
		return nil, fmt.Errorf("strata-packages needs a Debian-family system: %s is missing on the machine the communicator reaches", strings.TrimSpace(out))
	}
	var st *imageState
	if status != 0 {
		// The script itself ends with a printf: a failure is the shell's
		// or the execute_command wrapper's (sudo -n without a password).
		err = fmt.Errorf("exit %d: %s", status, firstLine(errOut))
	} else {
		st, err = parseState(out, marker, lists)
	}
	if err != nil {
		return nil, fmt.Errorf("strata-packages needs a Debian-family system: reading its state (apt-get, dpkg-query, apt-mark, dpkg's architecture and database): %w", err)
	}
	return st, nil
}

// installed reads the dpkg database through the communicator.
func (s *shell) installed(ctx context.Context) (installedSet, error) {
	out, status, err := s.quiet(ctx, boundedRead(dpkg.StatusPath, dpkg.MaxStatusSize))
	if err != nil {
		return nil, err
	}
	return parseInstalled(out, status)
}
