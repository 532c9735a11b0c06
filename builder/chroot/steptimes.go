package chroot

import (
	"context"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
)

// stepTimes is how long each step of a build took, its Run and its Cleanup
// together, so that the builder's own overhead is visible at the end of
// every build.
type stepTimes struct {
	mu    sync.Mutex
	spent map[string]time.Duration
}

// timeSteps wraps each step so that its time counts in times. Steps with
// nothing to do (nopStep) are left out.
func timeSteps(steps []multistep.Step, times *stepTimes) []multistep.Step {
	out := make([]multistep.Step, 0, len(steps))
	for _, s := range steps {
		if _, nop := s.(nopStep); nop {
			out = append(out, s)
			continue
		}
		out = append(out, &timedStep{Step: s, name: stepName(s), times: times})
	}
	return out
}

func (t *stepTimes) add(name string, d time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.spent == nil {
		t.spent = map[string]time.Duration{}
	}
	t.spent[name] += d
}

// String is the one line the build prints: the steps, longest first (ties
// by name), each rounded to what a person reads.
func (t *stepTimes) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	names := make([]string, 0, len(t.spent))
	var total time.Duration
	for n, d := range t.spent {
		names = append(names, n)
		total += d
	}
	sort.Slice(names, func(i, j int) bool {
		if t.spent[names[i]] != t.spent[names[j]] {
			return t.spent[names[i]] > t.spent[names[j]]
		}
		return names[i] < names[j]
	})
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = n + " " + roundForPeople(t.spent[n])
	}
	return fmt.Sprintf("strata: step times (total %s): %s", roundForPeople(total), strings.Join(parts, ", "))
}

// roundForPeople keeps two or three significant digits: 3.1s, 412ms, 0.9ms.
func roundForPeople(d time.Duration) string {
	switch {
	case d >= 10*time.Second:
		return d.Round(100 * time.Millisecond).String()
	case d >= time.Second:
		return d.Round(10 * time.Millisecond).String()
	case d >= time.Millisecond:
		return d.Round(time.Millisecond).String()
	}
	return d.Round(10 * time.Microsecond).String()
}

// timedStep is a step whose Run and Cleanup are timed.
type timedStep struct {
	multistep.Step
	name  string
	times *stepTimes
}

func (t *timedStep) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	start := time.Now()
	defer func() { t.times.add(t.name, time.Since(start)) }()
	return t.Step.Run(ctx, state)
}

// InnerStepName names the step in -debug's pauses and -on-error's
// messages (multistep.DebugRunner asks wrapped steps for it).
func (t *timedStep) InnerStepName() string { return t.name }

func (t *timedStep) Cleanup(state multistep.StateBag) {
	start := time.Now()
	defer func() { t.times.add(t.name, time.Since(start)) }()
	t.Step.Cleanup(state)
}

// stepName is a step's type name without "step", in snake case:
// stepPackageCache is package_cache, stepProvision provision. A wrapped
// step (timed, run under -on-error) has its inner step's name.
func stepName(s multistep.Step) string {
	if w, ok := s.(interface{ InnerStepName() string }); ok {
		return w.InnerStepName()
	}
	typ := reflect.TypeOf(s)
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	name := typ.Name()
	for _, p := range []string{"step", "Step"} {
		name = strings.TrimPrefix(name, p)
	}
	var b strings.Builder
	for i, r := range name {
		if unicode.IsUpper(r) {
			if i > 0 {
				b.WriteByte('_')
			}
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	if b.Len() == 0 {
		return "step"
	}
	return b.String()
}
