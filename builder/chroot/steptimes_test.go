package chroot

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
)

type sleepStep struct{ run, cleanup time.Duration }

func (s sleepStep) Run(context.Context, multistep.StateBag) multistep.StepAction {
	time.Sleep(s.run)
	return multistep.ActionContinue
}
func (s sleepStep) Cleanup(multistep.StateBag) { time.Sleep(s.cleanup) }

type stepSlowThing struct{ sleepStep }

func TestStepTimes(t *testing.T) {
	times := new(stepTimes)
	steps := timeSteps([]multistep.Step{
		&stepSlowThing{sleepStep{run: 30 * time.Millisecond, cleanup: 20 * time.Millisecond}},
		nopStep{},
		sleepStep{run: 5 * time.Millisecond},
		&stepProvision{},
	}, times)
	if _, ok := steps[1].(nopStep); !ok {
		t.Error("a nop step was timed")
	}
	state := new(multistep.BasicStateBag)
	for _, s := range steps[:3] {
		s.Run(context.Background(), state)
	}
	for i := 2; i >= 0; i-- {
		steps[i].Cleanup(state)
	}
	line := times.String()
	if !strings.HasPrefix(line, "strata: step times (total ") {
		t.Fatalf("line %q", line)
	}
	// Longest first, Run and Cleanup together, names in snake case.
	_, list, _ := strings.Cut(line, "): ")
	parts := strings.Split(list, ", ")
	if len(parts) != 2 || !strings.HasPrefix(parts[0], "slow_thing ") || !strings.HasPrefix(parts[1], "sleep_step ") {
		t.Fatalf("parts %q", parts)
	}
	if d, err := time.ParseDuration(strings.TrimPrefix(parts[0], "slow_thing ")); err != nil || d < 50*time.Millisecond {
		t.Errorf("slow_thing took %v (%v), want Run and Cleanup, 50ms or more", d, err)
	}
	if n := stepName(&stepProvision{}); n != "provision" {
		t.Errorf("stepProvision is %q", n)
	}
	if n := stepName(&stepAptIndexes{}); n != "apt_indexes" {
		t.Errorf("stepAptIndexes is %q", n)
	}
	// A wrapped step has its inner step's name: -debug's pauses and
	// -on-error's messages show it.
	if n := stepName(steps[0]); n != "slow_thing" {
		t.Errorf("the timed stepSlowThing is %q", n)
	}
	if n := stepName(&stepHostCommands{option: "pre_unmount_commands"}); n != "pre_unmount_commands" {
		t.Errorf("the pre_unmount_commands step is %q", n)
	}
}
