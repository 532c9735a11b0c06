package chroot

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/multistep"

	"github.com/strata-build/packer-plugin-strata/internal/bytesize"
	"github.com/strata-build/packer-plugin-strata/internal/inroot"
)

// stepMinimize leaves out of the image what minimize says (docs, man and
// info pages, translations, gconv modules, logs, remove_files), installs
// the dpkg path-exclude rules that keep later installs as slim, and prints
// the size and entry count before and after.
//
// Uses cfg, root.
type stepMinimize struct{}

func (s *stepMinimize) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	cfg := configOf(state)
	m := cfg.Minimize
	if !*m.Enabled {
		return multistep.ActionContinue
	}
	ui := uiOf(state)
	ui.Say("Minimizing the image ...")
	start := time.Now()
	rep, err := minimizeTree(cfg.MountPath, m)
	if err != nil {
		return halt(state, fmt.Errorf("minimize: %w", err))
	}
	root := buildOf(state).root
	d, made, err := root.MkdirAll("/etc/dpkg/dpkg.cfg.d", 0o755)
	if err != nil {
		return halt(state, fmt.Errorf("minimize: /etc/dpkg/dpkg.cfg.d: %w", err))
	}
	d.Close()
	added := imageSize{entries: len(made)} // what minimize adds, to tell the size before
	// Rewritten only when it changes: an unchanged image stays byte for
	// byte the same, times too.
	rules := []byte(dpkgExcludes(m))
	if old, rerr := root.ReadRegular(dpkgExcludesFile, 1<<20); rerr != nil || !bytes.Equal(old, rules) {
		if err := root.WriteFile(dpkgExcludesFile, bytes.NewReader(rules), inroot.FileSpec{Mode: 0o644}); err != nil {
			return halt(state, fmt.Errorf("minimize: writing %s: %w", dpkgExcludesFile, err))
		}
		added.apparent = int64(len(rules) - len(old))
		if rerr != nil {
			added.entries++
		}
	}
	// One walk of the whole tree, after: the size before is that plus what
	// minimize removed, less what it added (a child's no-op build spent
	// 100 ms on a second walk).
	after, err := measureImage(cfg.MountPath)
	if err != nil {
		return halt(state, err)
	}
	gone, goneEntries := rep.removed()
	before := imageSize{apparent: after.apparent + gone - added.apparent, entries: after.entries + goneEntries - added.entries}
	if after.stateBytes > 0 {
		rep.Bytes["apt lists, caches, logs and temporary files (left out at commit)"] = after.stateBytes
		rep.Entries["apt lists, caches, logs and temporary files (left out at commit)"] = after.stateEntries
	}
	if len(rep.Bytes) > 0 {
		ui.Message("removed: " + rep.String())
	}
	ui.Message(fmt.Sprintf("Minimized in %s: %s in %d entries -> %s in %d entries (apparent size)",
		time.Since(start).Round(time.Millisecond), bytesize.MB(before.apparent), before.entries,
		bytesize.MB(after.apparent-after.stateBytes), after.entries-after.stateEntries))
	return multistep.ActionContinue
}

func (s *stepMinimize) Cleanup(multistep.StateBag) {}
