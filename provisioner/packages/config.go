//go:generate packer-sdc mapstructure-to-hcl2 -type Config
//go:generate packer-sdc struct-markdown

package packages

import (
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/common"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
	"github.com/hashicorp/packer-plugin-sdk/template/config"
	"github.com/hashicorp/packer-plugin-sdk/template/interpolate"

	"github.com/strata-build/packer-plugin-strata/internal/dpkg"
)

// Config is the strata-packages provisioner's configuration. It installs,
// removes, upgrades and holds Debian packages with apt, non-interactively,
// on any Debian-family system a Packer communicator reaches (inside
// strata-chroot, apt goes through the build's package cache).
type Config struct {
	common.PackerConfig `mapstructure:",squash"`

	// Packages to install: `name`, `name=version` (that exact version) or
	// `name/release` (from that release, such as `bookworm-backports`).
	// A name may carry an architecture, `libc6:i386`.
	Install []string `mapstructure:"install" required:"false"`
	// Packages to purge, with the dependencies nothing needs any more.
	Remove []string `mapstructure:"remove" required:"false"`
	// Upgrade every installed package first (`apt-get upgrade`).
	Upgrade bool `mapstructure:"upgrade" required:"false"`
	// Packages to hold at their installed version (`apt-mark hold`), so
	// later upgrades, here or in child images, leave them alone.
	Hold []string `mapstructure:"hold" required:"false"`
	// Install only what packages depend on, not what they recommend.
	// Defaults to `true`.
	NoInstallRecommends *bool `mapstructure:"no_install_recommends" required:"false"`
	// When to refresh the package indexes first (`apt-get update`):
	// `"auto"` (the default) skips it when the indexes apt has for the
	// image's current sources are shared ones (strata-chroot's package
	// cache keeps them per set of sources, architecture and InRelease
	// digests) that were checked against the mirror less than
	// `update_max_age` ago, or are pinned (`package_cache.offline` or
	// `snapshot`); anywhere else, and when a source has no list, it runs
	// the update. `"always"` runs it every time (it costs a revalidation
	// of each InRelease when nothing changed); `"never"` never does, and
	// fails when a source of the image has no package list. `true` and
	// `false` mean `"always"` and `"never"`.
	Update string `mapstructure:"update" required:"false"`
	// How old shared package indexes may be for `update = "auto"` to skip
	// `apt-get update`, as a Go duration such as `"30m"` or `"6h"`.
	// Defaults to `"1h"`; `"0s"` updates unless the indexes are pinned.
	UpdateMaxAge string `mapstructure:"update_max_age" required:"false"`
	// A lock file on the machine running Packer, such as
	// `packages.lock`. When it does not exist, the provisioner writes the
	// exact version of every package the install resolved: the packages
	// asked for and every dependency they pulled in. When it exists, the
	// provisioner installs exactly those versions, and fails naming the
	// package when the mirror no longer has one.
	LockFile string `mapstructure:"lock_file" required:"false"`
	// Resolve again and rewrite lock_file.
	UpdateLock bool `mapstructure:"update_lock" required:"false"`
	// How each command runs; `{{ .Command }}` is the command. Defaults to
	// `{{ .Command }}`. Over SSH as a user other than root, use
	// `sudo -n {{ .Command }}`.
	ExecuteCommand string `mapstructure:"execute_command" required:"false"`

	ctx          interpolate.Context
	updateMaxAge time.Duration
}

// The values of update.
const (
	updateAuto   = "auto"
	updateAlways = "always"
	updateNever  = "never"
)

var (
	releaseRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9.+-]*$`)
)

// request is one install entry: a name and its pin.
type request struct {
	Name    string // with its :arch, if any
	Version string
	Release string
}

func (r request) String() string {
	switch {
	case r.Version != "":
		return r.Name + "=" + r.Version
	case r.Release != "":
		return r.Name + "/" + r.Release
	}
	return r.Name
}

func parseRequest(s string) (request, error) {
	if name, v, ok := strings.Cut(s, "="); ok {
		if !dpkg.ValidName(name) || !dpkg.ValidVersion(v) {
			return request{}, fmt.Errorf("%q is not name=version (a Debian package name and version)", s)
		}
		return request{Name: name, Version: v}, nil
	}
	if name, rel, ok := strings.Cut(s, "/"); ok {
		if !dpkg.ValidName(name) || !releaseRe.MatchString(rel) {
			return request{}, fmt.Errorf("%q is not name/release", s)
		}
		return request{Name: name, Release: rel}, nil
	}
	if !dpkg.ValidName(s) {
		return request{}, fmt.Errorf("%q is not a Debian package name (lower case letters, digits, + - .)", s)
	}
	return request{Name: s}, nil
}

// Prepare decodes and checks the configuration, collecting every error.
func (c *Config) Prepare(raws ...interface{}) error {
	err := config.Decode(c, &config.DecodeOpts{
		PluginType:         "strata-packages",
		Interpolate:        true,
		InterpolateContext: &c.ctx,
		InterpolateFilter:  &interpolate.RenderFilter{Exclude: []string{"execute_command"}},
	}, raws...)
	if err != nil {
		return err
	}
	var errs *packersdk.MultiError
	add := func(format string, a ...interface{}) {
		errs = packersdk.MultiErrorAppend(errs, fmt.Errorf(format, a...))
	}
	t := true
	if c.NoInstallRecommends == nil {
		c.NoInstallRecommends = &t
	}
	switch c.Update {
	case "":
		c.Update = updateAuto
	case "true", "1": // a boolean, as older templates set it
		c.Update = updateAlways
	case "false", "0":
		c.Update = updateNever
	case updateAuto, updateAlways, updateNever:
	default:
		add("update: %q is none of \"auto\", \"always\" or \"never\"", c.Update)
	}
	if c.UpdateMaxAge == "" {
		c.UpdateMaxAge = "1h"
	}
	if d, err := time.ParseDuration(c.UpdateMaxAge); err != nil || d < 0 {
		add("update_max_age: %q is not a duration such as \"1h\" or \"30m\"", c.UpdateMaxAge)
	} else {
		c.updateMaxAge = d
	}
	if c.ExecuteCommand == "" {
		c.ExecuteCommand = "{{.Command}}"
	}
	if !strings.Contains(c.ExecuteCommand, ".Command") {
		add("execute_command: %q must contain {{ .Command }}", c.ExecuteCommand)
	} else if _, err := interpolate.Render(c.ExecuteCommand, &c.ctx); err != nil {
		add("execute_command: %v", err)
	}
	installed := map[string]bool{}
	for i, s := range c.Install {
		r, err := parseRequest(s)
		if err != nil {
			add("install[%d]: %v", i, err)
			continue
		}
		if installed[r.Name] {
			add("install: %s is listed twice", r.Name)
		}
		installed[r.Name] = true
	}
	for _, list := range []struct {
		opt   string
		names []string
	}{{"remove", c.Remove}, {"hold", c.Hold}} {
		seen := map[string]bool{}
		for i, n := range list.names {
			if !dpkg.ValidName(n) {
				add("%s[%d]: %q is not a Debian package name (no version: %s takes names)", list.opt, i, n, list.opt)
			} else if seen[n] {
				add("%s: %s is listed twice", list.opt, n)
			}
			seen[n] = true
		}
	}
	for _, n := range c.Remove {
		if installed[n] {
			add("install and remove both list %s; keep it in one", n)
		}
		if slices.Contains(c.Hold, n) {
			add("remove and hold both list %s; keep it in one", n)
		}
	}
	if len(c.Install) == 0 && len(c.Remove) == 0 && !c.Upgrade && len(c.Hold) == 0 {
		add("nothing to do: set install, remove, upgrade or hold")
	}
	if c.LockFile != "" {
		abs, err := filepath.Abs(c.LockFile)
		if err != nil {
			add("lock_file: %v", err)
		} else {
			// Where it leads, and whether its directory is there, is
			// checked when it is used (lockPath): packer validate looks at
			// the template only.
			c.LockFile = abs
		}
		if len(c.Install) == 0 && !c.Upgrade {
			add("lock_file: records what install and upgrade resolve; set install")
		}
	} else if c.UpdateLock {
		add("update_lock: rewrites lock_file; set lock_file too")
	}
	if errs != nil && len(errs.Errors) > 0 {
		return errs
	}
	return nil
}

// requests are the install entries, parsed (Prepare checked them).
func (c *Config) requests() []request {
	out := make([]request, 0, len(c.Install))
	for _, s := range c.Install {
		r, _ := parseRequest(s)
		out = append(out, r)
	}
	return out
}

// requestKey is the install list as a lock file records it: sorted.
func requestKey(install []string) []string {
	out := slices.Clone(install)
	sort.Strings(out)
	if out == nil {
		out = []string{}
	}
	return out
}
