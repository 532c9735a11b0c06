package chroot

import (
	"context"
	"fmt"
	"log"
	"strings"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/common"
	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
)

// newRunner runs the steps as `packer build -debug` and `-on-error` ask:
//   - cleanup (the default): a failed build undoes every step that ran;
//   - abort: a failed or interrupted build undoes nothing, so the chroot
//     stays mounted for a look (the next build with the work dir cleans up);
//   - run-cleanup-provisioner: abort, but the template's
//     error-cleanup-provisioner still runs;
//   - ask: after a failed step, the person chooses: clean up, abort or
//     retry the step;
//
// and -debug pauses after each step's Run and before its Cleanup.
// Packer's SDK has this in multistep/commonsteps; stepProvision says why the
// builder does not import that package.
func newRunner(steps []multistep.Step, pc common.PackerConfig, ui packersdk.Ui) multistep.Runner {
	if mode := pc.PackerOnError; mode == "abort" || mode == "ask" || mode == "run-cleanup-provisioner" {
		wrapped := make([]multistep.Step, len(steps))
		for i, s := range steps {
			wrapped[i] = &onErrorStep{Step: s, name: stepName(s), mode: mode, ui: ui}
		}
		steps = wrapped
	}
	if pc.PackerDebug {
		return &multistep.DebugRunner{Steps: steps, PauseFn: debugPause(ui)}
	}
	return &multistep.BasicRunner{Steps: steps}
}

// keptForDebugging says whether a failed build left its work in place
// (-on-error=abort or run-cleanup-provisioner, or abort chosen under ask).
func keptForDebugging(cfg *Config, state multistep.StateBag) bool {
	_, aborted := state.GetOk(stateAborted)
	return cfg.PackerOnError == "abort" || cfg.PackerOnError == "run-cleanup-provisioner" || aborted
}

// Keys of the state bag only the runner uses.
const (
	stateAborted       = "aborted"           // the person chose abort after a failed step
	stateAbortReported = "abort_step_logged" // the runner said why it skips the cleanups
)

// onErrorStep is a step run under -on-error=abort, ask or
// run-cleanup-provisioner.
type onErrorStep struct {
	multistep.Step
	name string
	mode string
	ui   packersdk.Ui
}

func (s *onErrorStep) InnerStepName() string { return s.name }

// Run runs the step; under ask, a failed step is asked about and may run
// again.
func (s *onErrorStep) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	for {
		action := s.Step.Run(ctx, state)
		if s.mode != "ask" || action != multistep.ActionHalt {
			return action
		}
		if _, cancelled := state.GetOk(multistep.StateCancelled); cancelled {
			return action // interrupted, not failed: nothing to ask
		}
		if err, ok := state.GetOk(stateError); ok {
			s.ui.Error(fmt.Sprint(err))
		}
		switch askAfterFailure(s.ui, s.name, state) {
		case 'a':
			state.Put(stateAborted, true)
			return action
		case 'r':
			state.Remove(stateError) // a retry that succeeds leaves no error behind
			continue
		default:
			return action
		}
	}
}

// Cleanup skips the step's cleanup when the build failed or was
// interrupted (under ask: when the person chose abort). Under
// run-cleanup-provisioner the provision step's cleanup still runs: it is
// what runs that provisioner.
func (s *onErrorStep) Cleanup(state multistep.StateBag) {
	switch {
	case s.mode == "ask":
		if _, aborted := state.GetOk(stateAborted); !aborted || !s.skipCleanup(state) {
			s.Step.Cleanup(state)
		}
	case s.mode == "run-cleanup-provisioner" && s.name == stepName(&stepProvision{}):
		s.Step.Cleanup(state)
	case !s.skipCleanup(state):
		s.Step.Cleanup(state)
	}
}

// skipCleanup says whether a failed or interrupted build keeps this step's
// work, and says so: why once, then each step it skips.
func (s *onErrorStep) skipCleanup(state multistep.StateBag) bool {
	_, cancelled := state.GetOk(multistep.StateCancelled)
	_, halted := state.GetOk(multistep.StateHalted)
	_, aborted := state.GetOk(stateAborted)
	if !cancelled && !halted && !aborted {
		return false
	}
	if _, reported := state.GetOk(stateAbortReported); !reported {
		state.Put(stateAbortReported, true)
		why := "The build failed"
		if cancelled {
			why = "The build was interrupted"
		}
		s.ui.Error(fmt.Sprintf("%s; -on-error=%s: what it did is not undone", why, s.mode))
	}
	s.ui.Error(fmt.Sprintf("-on-error=%s: skipping the cleanup of step %q", s.mode, s.name))
	return true
}

// askAfterFailure asks what to do after step name failed: 'c' clean up
// and exit, 'a' abort without cleanup, 'r' retry. An interrupted build
// stops asking and cleans up.
func askAfterFailure(ui packersdk.Ui, name string, state multistep.StateBag) byte {
	ui.Say(fmt.Sprintf("Step %q failed", name))
	answer := make(chan byte, 1)
	go func() {
		for {
			line, err := ui.Ask("[c] Clean up and exit, [a] abort without cleanup, or [r] retry step (build may fail even if retry succeeds)?")
			if err != nil {
				log.Printf("asking what to do after step %q failed: %v", name, err)
			}
			switch c := strings.ToLower(strings.TrimSpace(line) + "c")[0]; c {
			case 'c', 'a', 'r':
				answer <- c
				return
			}
			ui.Say(fmt.Sprintf("Incorrect input: %q", line))
		}
	}()
	return waitUnlessCancelled(state, answer, 'c')
}

// debugPause is -debug's pause: it waits for Enter, or for an interrupt.
func debugPause(ui packersdk.Ui) multistep.DebugPauseFn {
	return func(loc multistep.DebugLocation, name string, state multistep.StateBag) {
		where := "at"
		switch loc {
		case multistep.DebugLocationAfterRun:
			where = "after run of"
		case multistep.DebugLocationBeforeCleanup:
			where = "before cleanup of"
		}
		entered := make(chan byte, 1)
		go func() {
			if _, err := ui.Ask(fmt.Sprintf("Pausing %s step '%s'. Press enter to continue.", where, name)); err != nil {
				log.Printf("-debug pause: %v", err)
			}
			entered <- 0
		}()
		waitUnlessCancelled(state, entered, 0)
	}
}

// waitUnlessCancelled returns what ch gives, or otherwise when the build
// is cancelled (a person's Ctrl-C while a question waits).
func waitUnlessCancelled(state multistep.StateBag, ch <-chan byte, otherwise byte) byte {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case c := <-ch:
			return c
		case <-tick.C:
			if _, cancelled := state.GetOk(multistep.StateCancelled); cancelled {
				return otherwise
			}
		}
	}
}
