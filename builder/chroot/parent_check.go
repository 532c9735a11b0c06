package chroot

import (
	"context"
	"fmt"
	"time"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/strata-build/packer-plugin-strata/layer"
)

// parentCheck re-reads the parent's layers against their diffIDs beside the
// build's first steps (mounting, provisioning), instead of before them: a
// no-op child would otherwise wait for it (0.3–0.5 s for the minimized
// base). What it guards is what the build makes of the parent: nothing is
// committed, exported or kept for other builds (the parent's binary
// caches) before it passed. The tree it reads is held (stepRootfs) and
// only ever mounted as a read-only lower dir.
type parentCheck struct {
	layers int
	cancel context.CancelFunc
	done   chan struct{}
	err    error
	took   time.Duration
	told   bool
}

// startParentCheck starts checking parent in store.
func startParentCheck(ctx context.Context, store *layer.Store, parent *layer.Image) *parentCheck {
	ctx, cancel := context.WithCancel(ctx)
	c := &parentCheck{layers: len(parent.Layers), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		start := time.Now()
		if err := store.VerifyImage(ctx, parent); err != nil {
			c.err = fmt.Errorf("parent %s: %w", parent.ID, err)
		}
		c.took = time.Since(start)
	}()
	return c
}

// wait returns the check's outcome once it is done (or ctx is); the first
// call says in ui how long the check took.
func (c *parentCheck) wait(ctx context.Context, ui packersdk.Ui) error {
	if c == nil {
		return nil
	}
	select {
	case <-c.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	if c.err == nil && !c.told {
		c.told = true
		ui.Message(fmt.Sprintf("Parent's %d layer(s) checked against their diffIDs in %s (beside the build)", c.layers, c.took.Round(time.Millisecond)))
	}
	return c.err
}

// stop cancels the check and waits for it to end, so that nothing reads
// the parent's layers once their hold goes.
func (c *parentCheck) stop() {
	if c == nil {
		return
	}
	c.cancel()
	<-c.done
}
