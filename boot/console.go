package boot

import (
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"
)

// Lines on the console that end a boot early as a failure.
var fatal = []struct {
	re     *regexp.Regexp
	reason string
}{
	{regexp.MustCompile(`Kernel panic - not syncing`), "kernel panic"},
	{regexp.MustCompile(`UEFI Interactive Shell`), "the firmware found nothing to boot and started the UEFI shell"},
	{regexp.MustCompile(`You are in emergency mode|Entering emergency mode`), "systemd entered emergency mode"},
	{regexp.MustCompile(`Dropping to a shell!`), "the initramfs could not mount the root file system and dropped to a shell"},
	{regexp.MustCompile(`KVM internal error`), "KVM internal error (try accel tcg)"},
}

var (
	// ansi matches terminal escape sequences (OVMF draws with them).
	ansi = regexp.MustCompile(`\x1b(\[[0-9;=?]*[A-Za-z]|[()][0-9A-Za-z]|[=>78cDEHM])`)
	// kernelStart is the kernel's first console line.
	kernelStart = regexp.MustCompile(`Linux version [0-9]|^\[\s*0\.0+\] `)
	// startupFinished is systemd's summary once the default target is up.
	startupFinished = regexp.MustCompile(`Startup finished in (.*) = `)
	startupPart     = regexp.MustCompile(`((?:[0-9.]+(?:h|min|s|ms|us|µs)\s*)+)\((\w+)\)`)
)

// afterMatch is how long Check keeps reading after the match for systemd's
// "Startup finished" line, and after a panic for its trace.
var afterMatch = 3 * time.Second

// watcher keeps the console's tail and systemd's startup summary.
type watcher struct {
	expect  *regexp.Regexp
	console io.Writer
	tail    []string
	matched string
	systemd time.Duration
}

func (w *watcher) add(line string) {
	if w.console != nil {
		fmt.Fprintln(w.console, line)
	}
	w.tail = append(w.tail, line)
	if len(w.tail) > TailLines {
		w.tail = w.tail[len(w.tail)-TailLines:]
	}
	if d, ok := ParseStartupFinished(line); ok {
		w.systemd = d
	}
}

func (w *watcher) fail(reason, accel string, stderr []string) *Error {
	return &Error{Reason: reason, Accel: accel, Console: append([]string(nil), w.tail...), Stderr: stderr}
}

func (w *watcher) result(accel string, start, kernelAt, matchAt time.Time) *Result {
	r := &Result{Accel: accel, Total: matchAt.Sub(start), Console: append([]string(nil), w.tail...), Matched: w.matched}
	switch {
	case w.systemd > 0:
		r.BootTime, r.BootTimeSource = w.systemd, "systemd"
	case !kernelAt.IsZero():
		r.BootTime, r.BootTimeSource = matchAt.Sub(kernelAt), "console"
	default:
		// The kernel printed nothing (no console=ttyS0): all we know is
		// the whole run.
		r.BootTime, r.BootTimeSource = r.Total, "total"
	}
	return r
}

// ParseStartupFinished reads systemd's "Startup finished in 1.2s (firmware)
// + 800ms (loader) + 2.1s (kernel) + 3.4s (initrd) + 10.2s (userspace) =
// 17.7s." and returns the time from the kernel's start: kernel + initrd +
// userspace.
func ParseStartupFinished(line string) (time.Duration, bool) {
	m := startupFinished.FindStringSubmatch(line)
	if m == nil {
		return 0, false
	}
	var sum time.Duration
	found := false
	for _, p := range startupPart.FindAllStringSubmatch(m[1], -1) {
		switch p[2] {
		case "kernel", "initrd", "userspace":
		default:
			continue
		}
		d, err := parseTimespan(p[1])
		if err != nil {
			return 0, false
		}
		sum += d
		found = true
	}
	return sum, found
}

// parseTimespan reads systemd's "1min 2.345s", "345ms", "1h 2min".
func parseTimespan(s string) (time.Duration, error) {
	s = strings.NewReplacer("min", "m", "µs", "us", " ", "").Replace(strings.TrimSpace(s))
	return time.ParseDuration(s)
}
