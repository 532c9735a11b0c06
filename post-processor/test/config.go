//go:generate packer-sdc mapstructure-to-hcl2 -type Config,Check
//go:generate packer-sdc struct-markdown

package test

import (
	"fmt"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/common"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
	"github.com/hashicorp/packer-plugin-sdk/template/config"
	"github.com/hashicorp/packer-plugin-sdk/template/interpolate"

	"github.com/strata-build/packer-plugin-strata/boot"
	catalogdb "github.com/strata-build/packer-plugin-strata/catalog"
)

// Modes a test run has.
const (
	ModeContainer = "container"
	ModeVM        = "vm"
)

// What a failure does.
const (
	OnFailureFail     = "fail"
	OnFailureRegister = "register"
)

// Defaults.
const (
	DefaultCheckTimeout = 60 * time.Second
	DefaultTimeout      = 10 * time.Minute
	DefaultKind         = "tests"
)

// Config is the strata-test post-processor's configuration. It runs
// checks against the image of the strata-chroot build before it, without
// changing a byte of it, and records the result as evidence in the
// artifact's artifact.json for strata-catalog to register.
type Config struct {
	common.PackerConfig `mapstructure:",squash"`

	// Where the checks run: `container` (default) runs them with chroot in
	// a throwaway read-only overlay of the image's tree (nothing runs as
	// init: services are not started, so `listening` and `http` checks
	// need `vm`); `vm` boots the artifact's `disk` output under QEMU and
	// runs them in the booted system.
	Mode string `mapstructure:"mode" required:"false"`
	// The checks, run in the order given.
	Checks []Check `mapstructure:"check" required:"true"`
	// The whole run's time limit (a Go duration); default `10m`. In vm
	// mode it includes the boot.
	Timeout string `mapstructure:"timeout" required:"false"`
	// The time limit of a check that sets none; default `60s`.
	CheckTimeout string `mapstructure:"check_timeout" required:"false"`
	// What a failed check does: `fail` (default) fails the build, so
	// strata-catalog after it registers nothing; `register` passes the
	// artifact on with failed evidence, which strata-catalog registers
	// for inspection without moving any channel (and which no channel
	// whose policy requires this evidence takes).
	OnFailure string `mapstructure:"on_failure" required:"false"`
	// The evidence kind recorded; default `tests`. Channel policies
	// (`strata policy set ... --require KIND`) name it.
	Kind string `mapstructure:"kind" required:"false"`
	// The report files' name in the output directory: NAME.junit.xml and
	// NAME.json (and NAME.json.intoto.json); defaults to the kind.
	ReportName string `mapstructure:"report_name" required:"false"`
	// vm mode: the VM's memory in MiB; default 1024.
	MemoryMiB int `mapstructure:"memory" required:"false"`
	// vm mode: `auto` (default: KVM when it works here, else TCG), `kvm`
	// or `tcg`.
	Accel string `mapstructure:"accel" required:"false"`
	// vm mode: the QEMU program; default qemu-system-x86_64 from PATH.
	QEMU string `mapstructure:"qemu" required:"false"`
	// Print the guest's or container's output live (a line each) in
	// Packer's UI.
	ShowOutput bool `mapstructure:"show_output" required:"false"`

	ctx interpolate.Context

	timeout      time.Duration
	checkTimeout time.Duration
}

// Check is one `check { ... }` block. Exactly one of `command`, `service`,
// `listening`, `http` and `scripts` says what it does.
type Check struct {
	// The check's name, unique in the post-processor, such as
	// `nginx-config`: the JUnit test case's name.
	Name string `mapstructure:"name" required:"true"`
	// A shell command (`/bin/sh -c`) run as root inside the image. It
	// passes when it exits with `exit_code` and its output (stdout and
	// stderr) matches `output_matches`.
	Command string `mapstructure:"command" required:"false"`
	// The exit code `command` must give; default 0.
	ExitCode *int `mapstructure:"exit_code" required:"false"`
	// A regular expression (Go syntax) the output of `command` (or the
	// body of `http`) must match.
	OutputMatches string `mapstructure:"output_matches" required:"false"`
	// A systemd unit (`nginx` means nginx.service) that must be enabled,
	// and in vm mode also active.
	Service string `mapstructure:"service" required:"false"`
	// `tcp:PORT`, `tcp6:PORT`, `udp:PORT` or `udp6:PORT` (vm mode): a
	// socket listening on that port in the guest (`tcp` and `udp` also
	// take an IPv6 socket: a dual-stack one serves IPv4 too).
	Listening string `mapstructure:"listening" required:"false"`
	// An http:// URL fetched inside the guest (vm mode; with curl or wget
	// from the image, else a plain HTTP/1.0 request through bash).
	HTTP string `mapstructure:"http" required:"false"`
	// The status `http` must answer; default 200.
	Status int `mapstructure:"status" required:"false"`
	// Files on the build host (globs, relative to the directory Packer
	// runs in), copied into the image's /run and run one by one, each its
	// own test case: *.bats files with bats when the image has it, any
	// other file as an executable.
	Scripts []string `mapstructure:"scripts" required:"false"`
	// This check's time limit (a Go duration); default `check_timeout`.
	// For `scripts`, each script's.
	Timeout string `mapstructure:"timeout" required:"false"`

	timeout time.Duration
	re      *regexp.Regexp
	files   []string
}

var (
	checkNameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)
	listenRe    = regexp.MustCompile(`^(tcp|tcp6|udp|udp6):([0-9]{1,5})$`)
	unitRe      = regexp.MustCompile(`^[A-Za-z0-9:_.@-]+$`)
)

// Prepare decodes and checks the configuration, collecting every error
// before anything touches the host.
func (c *Config) Prepare(raws ...interface{}) error {
	err := config.Decode(c, &config.DecodeOpts{
		PluginType:         "strata-test",
		Interpolate:        true,
		InterpolateContext: &c.ctx,
	}, raws...)
	if err != nil {
		return err
	}
	var errs *packersdk.MultiError
	add := func(format string, a ...interface{}) {
		errs = packersdk.MultiErrorAppend(errs, fmt.Errorf(format, a...))
	}
	switch c.Mode {
	case "":
		c.Mode = ModeContainer
	case ModeContainer, ModeVM:
	default:
		add("mode: %q; use container or vm", c.Mode)
	}
	switch c.OnFailure {
	case "":
		c.OnFailure = OnFailureFail
	case OnFailureFail, OnFailureRegister:
	default:
		add("on_failure: %q; use fail or register", c.OnFailure)
	}
	if c.Kind == "" {
		c.Kind = DefaultKind
	} else if catalogdb.ValidName("evidence kind", c.Kind) != nil || c.Kind == catalogdb.KindBootCheck {
		// The catalog's rule for evidence kinds, so what this accepts registers.
		add("kind: %q; use lower-case letters, digits, '.', '_' and '-', such as tests or smoke (bootcheck is the builder's)", c.Kind)
	}
	if c.ReportName == "" {
		c.ReportName = c.Kind
	} else if !checkNameRe.MatchString(c.ReportName) {
		add("report_name: %q is not a plain file name (letters, digits, . _ -)", c.ReportName)
	}
	c.timeout = duration(add, "timeout", c.Timeout, DefaultTimeout)
	c.checkTimeout = duration(add, "check_timeout", c.CheckTimeout, DefaultCheckTimeout)
	if c.MemoryMiB < 0 || (c.MemoryMiB > 0 && c.MemoryMiB < 128) {
		add("memory: %d MiB; give at least 128 (default %d)", c.MemoryMiB, boot.DefaultMemoryMiB)
	}
	if c.Accel == "" {
		c.Accel = boot.AccelAuto
	} else if boot.ValidAccel(c.Accel) != nil {
		add("accel: %q; use auto, kvm or tcg", c.Accel)
	}
	if len(c.Checks) == 0 {
		add("check: at least one check { name = ...; command = ... } block is required")
	}
	seen := map[string]bool{}
	for i := range c.Checks {
		ch := &c.Checks[i]
		where := fmt.Sprintf("check[%d]", i)
		if ch.Name != "" {
			where = fmt.Sprintf("check %q", ch.Name)
		}
		ch.prepare(where, c, seen, add)
	}
	if errs != nil && len(errs.Errors) > 0 {
		return errs
	}
	return nil
}

func duration(add func(string, ...interface{}), opt, s string, def time.Duration) time.Duration {
	if s == "" {
		return def
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		add("%s: %q is not a positive duration, such as 90s or 5m", opt, s)
		return def
	}
	return d
}

func (ch *Check) prepare(where string, c *Config, seen map[string]bool, add func(string, ...interface{})) {
	switch {
	case ch.Name == "":
		add("%s: name is required, such as name = \"nginx-config\"", where)
	case !checkNameRe.MatchString(ch.Name):
		add("%s: name: use letters, digits, . _ - (at most 63)", where)
	case seen[ch.Name]:
		add("%s: another check has that name", where)
	}
	seen[ch.Name] = true
	var kinds []string
	for _, k := range []struct {
		name string
		set  bool
	}{{"command", ch.Command != ""}, {"service", ch.Service != ""}, {"listening", ch.Listening != ""}, {"http", ch.HTTP != ""}, {"scripts", len(ch.Scripts) > 0}} {
		if k.set {
			kinds = append(kinds, k.name)
		}
	}
	if len(kinds) != 1 {
		add("%s: give exactly one of command, service, listening, http and scripts (it has %d: %s)", where, len(kinds), strings.Join(kinds, ", "))
	}
	ch.timeout = duration(func(f string, a ...interface{}) { add(where+": "+f, a...) }, "timeout", ch.Timeout, c.checkTimeout)
	if ch.timeout > c.timeout {
		add("%s: timeout %s is longer than the whole run's (timeout = %s)", where, ch.timeout, c.timeout)
	}
	if ch.OutputMatches != "" {
		re, err := regexp.Compile(ch.OutputMatches)
		if err != nil {
			add("%s: output_matches: %v", where, err)
		}
		ch.re = re
		if ch.Command == "" && ch.HTTP == "" {
			add("%s: output_matches goes with command or http", where)
		}
	}
	if ch.ExitCode != nil {
		if ch.Command == "" {
			add("%s: exit_code goes with command", where)
		} else if *ch.ExitCode < 0 || *ch.ExitCode > 255 {
			add("%s: exit_code %d is not 0..255", where, *ch.ExitCode)
		}
	}
	if ch.Status != 0 {
		if ch.HTTP == "" {
			add("%s: status goes with http", where)
		} else if ch.Status < 100 || ch.Status > 599 {
			add("%s: status %d is not an HTTP status", where, ch.Status)
		}
	}
	if ch.Service != "" && !unitRe.MatchString(ch.Service) {
		add("%s: service %q is not a systemd unit name", where, ch.Service)
	}
	if ch.Listening != "" {
		m := listenRe.FindStringSubmatch(ch.Listening)
		if m == nil {
			add("%s: listening %q; use tcp:PORT, tcp6:PORT, udp:PORT or udp6:PORT", where, ch.Listening)
		} else if p, _ := strconv.Atoi(m[2]); p < 1 || p > 65535 {
			add("%s: listening: port %s is not 1..65535", where, m[2])
		}
		if c.Mode == ModeContainer {
			add("%s: listening needs mode = \"vm\": in container mode nothing starts services, and the container shares the build host's network", where)
		}
	}
	if ch.HTTP != "" {
		u, err := url.Parse(ch.HTTP)
		if err != nil || u.Scheme != "http" || u.Host == "" || strings.ContainsAny(ch.HTTP, "'\"\\ \n`$") {
			add("%s: http %q; give an http:// URL (no quotes, spaces, $ or backslashes)", where, ch.HTTP)
		}
		if c.Mode == ModeContainer {
			add("%s: http needs mode = \"vm\": in container mode nothing starts services, and the container shares the build host's network", where)
		}
	}
	for _, pat := range ch.Scripts {
		files, err := filepath.Glob(pat)
		if err != nil {
			add("%s: scripts: %q: %v", where, pat, err)
			continue
		}
		if len(files) == 0 {
			add("%s: scripts: %q matches no file", where, pat)
		}
		for _, f := range files {
			if !checkNameRe.MatchString(filepath.Base(f)) {
				add("%s: scripts: %q: use file names of letters, digits, . _ -", where, f)
			}
			ch.files = append(ch.files, f)
		}
	}
}
