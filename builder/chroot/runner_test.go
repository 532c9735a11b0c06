package chroot

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/common"
	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
)

// answeringUi is a Ui whose Ask answers from a list and records what was
// asked, said and reported as errors.
type answeringUi struct {
	packersdk.Ui
	mu      sync.Mutex
	answers []string
	asked   []string
	said    []string
}

func (u *answeringUi) Ask(q string) (string, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.asked = append(u.asked, q)
	if len(u.answers) == 0 {
		return "", errors.New("no more answers")
	}
	a := u.answers[0]
	u.answers = u.answers[1:]
	return a, nil
}

func (u *answeringUi) Say(m string)   { u.record(m) }
func (u *answeringUi) Error(m string) { u.record(m) }
func (u *answeringUi) record(m string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.said = append(u.said, m)
}

func (u *answeringUi) output() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return strings.Join(u.said, "\n")
}

// recordingHook is Packer's provision hook: it records each hook type it
// ran and fails the provision hook the first fails times.
type recordingHook struct {
	mu    sync.Mutex
	fails int
	ran   []string
	data  map[string]interface{}
	block bool // the provision hook waits for its context
}

func (h *recordingHook) Run(ctx context.Context, typ string, _ packersdk.Ui, _ packersdk.Communicator, data interface{}) error {
	h.mu.Lock()
	h.ran = append(h.ran, typ)
	h.data, _ = data.(map[string]interface{})
	fail := typ == packersdk.HookProvision && h.fails > 0
	if fail {
		h.fails--
	}
	block := h.block && typ == packersdk.HookProvision
	h.mu.Unlock()
	if block {
		<-ctx.Done()
		return ctx.Err()
	}
	if fail {
		return errors.New("provisioner failed")
	}
	return nil
}

func (h *recordingHook) runs() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.ran)
}

// journalStep records its Run and Cleanup in a shared journal.
type journalStep struct {
	name    string
	journal *[]string
	mu      *sync.Mutex
}

func (s *journalStep) InnerStepName() string { return s.name }
func (s *journalStep) Run(context.Context, multistep.StateBag) multistep.StepAction {
	s.mu.Lock()
	defer s.mu.Unlock()
	*s.journal = append(*s.journal, "run "+s.name)
	return multistep.ActionContinue
}
func (s *journalStep) Cleanup(multistep.StateBag) {
	s.mu.Lock()
	defer s.mu.Unlock()
	*s.journal = append(*s.journal, "cleanup "+s.name)
}

// runnerBuild runs mount (a step before), provision and commit (a step
// after), timed as the builder times them, under the given -on-error mode,
// and returns the journal of the two other steps.
func runnerBuild(t *testing.T, ctx context.Context, mode string, hook *recordingHook, ui *answeringUi) (journal []string, state *multistep.BasicStateBag) {
	t.Helper()
	var mu sync.Mutex
	steps := timeSteps([]multistep.Step{
		&journalStep{name: "mount", journal: &journal, mu: &mu},
		&stepProvision{},
		&journalStep{name: "commit", journal: &journal, mu: &mu},
	}, new(stepTimes))
	state = new(multistep.BasicStateBag)
	state.Put(stateUI, ui)
	state.Put(stateHook, hook)
	newRunner(steps, common.PackerConfig{PackerOnError: mode}, ui).Run(ctx, state)
	mu.Lock()
	defer mu.Unlock()
	return slices.Clone(journal), state
}

func TestRunnerOnError(t *testing.T) {
	const (
		prov    = packersdk.HookProvision
		cleanup = packersdk.HookCleanupProvision
	)
	for _, tc := range []struct {
		mode     string
		answers  []string
		fails    int
		journal  []string
		hooks    []string
		failed   bool
		messages []string // in what the Ui was told, in this order
	}{
		{mode: "", fails: 1, failed: true,
			journal: []string{"run mount", "cleanup mount"}, hooks: []string{prov, cleanup}},
		{mode: "cleanup", fails: 1, failed: true,
			journal: []string{"run mount", "cleanup mount"}, hooks: []string{prov, cleanup}},
		{mode: "abort", fails: 1, failed: true,
			journal: []string{"run mount"}, hooks: []string{prov},
			messages: []string{"The build failed; -on-error=abort", `-on-error=abort: skipping the cleanup of step "provision"`, `skipping the cleanup of step "mount"`}},
		// The error-cleanup-provisioner still runs; nothing else is undone.
		{mode: "run-cleanup-provisioner", fails: 1, failed: true,
			journal: []string{"run mount"}, hooks: []string{prov, cleanup},
			messages: []string{"error-cleanup-provisioner", "The build failed; -on-error=run-cleanup-provisioner", `skipping the cleanup of step "mount"`}},
		{mode: "ask", answers: []string{"c"}, fails: 1, failed: true,
			journal: []string{"run mount", "cleanup mount"}, hooks: []string{prov, cleanup},
			messages: []string{"provisioner failed", `Step "provision" failed`}},
		{mode: "ask", answers: []string{"A"}, fails: 1, failed: true,
			journal: []string{"run mount"}, hooks: []string{prov},
			messages: []string{`Step "provision" failed`, `-on-error=ask: skipping the cleanup of step "provision"`, `skipping the cleanup of step "mount"`}},
		// A wrong answer is asked again; a retry that succeeds goes on and
		// leaves no error.
		{mode: "ask", answers: []string{"x", "r"}, fails: 1, failed: false,
			journal: []string{"run mount", "run commit", "cleanup commit", "cleanup mount"}, hooks: []string{prov, prov},
			messages: []string{`Incorrect input: "x"`}},
		{mode: "abort", fails: 0, failed: false,
			journal: []string{"run mount", "run commit", "cleanup commit", "cleanup mount"}, hooks: []string{prov}},
	} {
		t.Run(fmt.Sprintf("%s/%v", tc.mode, tc.answers), func(t *testing.T) {
			hook := &recordingHook{fails: tc.fails}
			ui := &answeringUi{Ui: packersdk.TestUi(t), answers: tc.answers}
			journal, state := runnerBuild(t, context.Background(), tc.mode, hook, ui)
			if !slices.Equal(journal, tc.journal) {
				t.Errorf("steps %q, want %q", journal, tc.journal)
			}
			if got := hook.runs(); !slices.Equal(got, tc.hooks) {
				t.Errorf("hooks %q, want %q", got, tc.hooks)
			}
			if _, failed := state.GetOk(stateError); failed != tc.failed {
				t.Errorf("error in the state: %v, want %v", failed, tc.failed)
			}
			out := ui.output()
			rest := out
			for _, m := range tc.messages {
				i := strings.Index(rest, m)
				if i < 0 {
					t.Fatalf("the Ui was not told %q (in order) in:\n%s", m, out)
				}
				rest = rest[i+len(m):]
			}
			if strings.Contains(out, "timed") {
				t.Errorf("a message names the timing wrapper, not the step:\n%s", out)
			}
		})
	}
}

// A step after provisioning that fails does not run the
// error-cleanup-provisioner: provisioning did not fail, and the chroot is
// gone by then.
func TestRunnerLaterFailureRunsNoCleanupProvisioner(t *testing.T) {
	for _, mode := range []string{"", "run-cleanup-provisioner"} {
		hook := &recordingHook{}
		ui := &answeringUi{Ui: packersdk.TestUi(t)}
		steps := timeSteps([]multistep.Step{&stepProvision{}, failingStep{}}, new(stepTimes))
		state := new(multistep.BasicStateBag)
		state.Put(stateUI, ui)
		state.Put(stateHook, hook)
		newRunner(steps, common.PackerConfig{PackerOnError: mode}, ui).Run(context.Background(), state)
		if got := hook.runs(); !slices.Equal(got, []string{packersdk.HookProvision}) {
			t.Errorf("-on-error=%q: hooks %q, want only the provision hook", mode, got)
		}
		if err, _ := state.Get(stateError).(error); err == nil || err.Error() != "export broke" {
			t.Errorf("-on-error=%q: error %v", mode, err)
		}
	}
}

type failingStep struct{}

func (failingStep) Run(_ context.Context, state multistep.StateBag) multistep.StepAction {
	state.Put(stateError, errors.New("export broke"))
	return multistep.ActionHalt
}
func (failingStep) Cleanup(multistep.StateBag) {}

// The build says the chroot stays mounted exactly when a failed build
// left its work in place.
func TestKeptForDebugging(t *testing.T) {
	for _, tc := range []struct {
		mode    string
		aborted bool
		want    bool
	}{
		{"", false, false}, {"cleanup", false, false}, {"abort", false, true},
		{"run-cleanup-provisioner", false, true}, {"ask", false, false}, {"ask", true, true},
	} {
		cfg := &Config{}
		cfg.PackerOnError = tc.mode
		state := new(multistep.BasicStateBag)
		if tc.aborted {
			state.Put(stateAborted, true)
		}
		if got := keptForDebugging(cfg, state); got != tc.want {
			t.Errorf("-on-error=%q aborted=%v: %v, want %v", tc.mode, tc.aborted, got, tc.want)
		}
	}
}

// An interrupted build under -on-error=abort keeps everything, as a failed
// one does; under the default it undoes every step that ran.
func TestRunnerInterrupted(t *testing.T) {
	for mode, want := range map[string][]string{
		"abort": {"run mount"},
		"":      {"run mount", "cleanup mount"},
	} {
		ctx, cancel := context.WithCancel(context.Background())
		hook := &recordingHook{block: true}
		ui := &answeringUi{Ui: packersdk.TestUi(t)}
		time.AfterFunc(50*time.Millisecond, cancel)
		journal, state := runnerBuild(t, ctx, mode, hook, ui)
		if !slices.Equal(journal, want) {
			t.Errorf("-on-error=%q: steps %q, want %q", mode, journal, want)
		}
		if _, ok := state.GetOk(multistep.StateCancelled); !ok {
			t.Errorf("-on-error=%q: the build is not marked cancelled", mode)
		}
		if mode == "abort" && !strings.Contains(ui.output(), "The build was interrupted; -on-error=abort") {
			t.Errorf("-on-error=abort does not say why it keeps the mounts:\n%s", ui.output())
		}
		if got := hook.runs(); !slices.Equal(got, []string{packersdk.HookProvision}) {
			t.Errorf("-on-error=%q: hooks %q: an interrupted build runs no error-cleanup-provisioner", mode, got)
		}
		cancel()
	}
	// Under ask, an interrupt is not a failure to ask about: the build
	// cleans up.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ui := &answeringUi{Ui: packersdk.TestUi(t), answers: []string{"a"}}
	time.AfterFunc(50*time.Millisecond, cancel)
	journal, _ := runnerBuild(t, ctx, "ask", &recordingHook{block: true}, ui)
	if len(ui.asked) != 0 || strings.Contains(ui.output(), "failed") {
		t.Errorf("an interrupt under ask asked %q:\n%s", ui.asked, ui.output())
	}
	if want := []string{"run mount", "cleanup mount"}; !slices.Equal(journal, want) {
		t.Errorf("ask, interrupted: steps %q, want %q", journal, want)
	}
}

// A question after a failed step stops waiting when the build is
// interrupted, and the build cleans up.
func TestRunnerAskInterrupted(t *testing.T) {
	state := new(multistep.BasicStateBag)
	blocked := make(chan struct{})
	ui := &blockingAskUi{Ui: packersdk.TestUi(t), blocked: blocked}
	defer close(blocked)
	time.AfterFunc(50*time.Millisecond, func() { state.Put(multistep.StateCancelled, true) })
	start := time.Now()
	if got := askAfterFailure(ui, "provision", state); got != 'c' {
		t.Errorf("answer %q, want c (clean up)", got)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the question waited %v after the interrupt", d)
	}
}

type blockingAskUi struct {
	packersdk.Ui
	blocked chan struct{}
}

func (u *blockingAskUi) Ask(string) (string, error) { <-u.blocked; return "", nil }

// -debug pauses after each Run and before each Cleanup, naming the step
// itself, not its timing wrapper.
func TestRunnerDebugPausesNameSteps(t *testing.T) {
	var journal []string
	var mu sync.Mutex
	steps := timeSteps([]multistep.Step{
		&journalStep{name: "mount", journal: &journal, mu: &mu},
		&journalStep{name: "commit", journal: &journal, mu: &mu},
	}, new(stepTimes))
	ui := &answeringUi{Ui: packersdk.TestUi(t), answers: []string{"", "", "", ""}}
	state := new(multistep.BasicStateBag)
	newRunner(steps, common.PackerConfig{PackerDebug: true}, ui).Run(context.Background(), state)
	want := []string{
		"Pausing after run of step 'mount'. Press enter to continue.",
		"Pausing after run of step 'commit'. Press enter to continue.",
		"Pausing before cleanup of step 'commit'. Press enter to continue.",
		"Pausing before cleanup of step 'mount'. Press enter to continue.",
	}
	if !slices.Equal(ui.asked, want) {
		t.Errorf("asked %q, want %q", ui.asked, want)
	}
	if want := []string{"run mount", "run commit", "cleanup commit", "cleanup mount"}; !slices.Equal(journal, want) {
		t.Errorf("steps %q, want %q", journal, want)
	}
}
