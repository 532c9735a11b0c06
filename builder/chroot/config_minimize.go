//go:generate packer-sdc struct-markdown

package chroot

import (
	"fmt"
	"path"
	"regexp"
	"strings"

	"github.com/strata-build/packer-plugin-strata/internal/dpkg"
)

// MinimizeConfig is what the builder leaves out of an image, after all
// provisioners and before the commit. By default it removes documentation
// (but every package's copyright file, the licence record), man and info
// pages, message translations but the kept locales, gconv charset modules,
// lintian overrides, and empties the logs; apt lists and caches, /tmp and
// /var/tmp never enter a layer anyway. It also installs dpkg path-exclude
// rules in /etc/dpkg/dpkg.cfg.d, so later installs, by a provisioner or in
// a child image, stay just as slim. apt keeps working.
type MinimizeConfig struct {
	// Minimize. Defaults to `true`.
	Enabled *bool `mapstructure:"enabled" required:"false"`
	// Locales whose translations and locale data stay, such as
	// `["C.UTF-8", "en_US.UTF-8"]`. Defaults to `["C.UTF-8"]`.
	Locales []string `mapstructure:"locales" required:"false"`
	// Keep glibc's gconv charset modules (8 MB on amd64). UTF-8, UTF-16,
	// UTF-32 and ASCII need none. Defaults to `false`.
	KeepGconv bool `mapstructure:"keep_gconv" required:"false"`
	// Packages to purge, with the dependencies nothing needs any more
	// (`apt-get purge --auto-remove`). An Essential package needs `force`.
	RemovePackages []string `mapstructure:"remove_packages" required:"false"`
	// Files to remove: absolute globs inside the image, such as
	// `/usr/share/zoneinfo/right/*`. Only real directories are descended
	// into; a symlink on the way is never followed.
	RemoveFiles []string `mapstructure:"remove_files" required:"false"`
	// Allow remove_packages to purge Essential packages.
	Force bool `mapstructure:"force" required:"false"`
}

var localeRe = regexp.MustCompile(`^[A-Za-z]{1,8}(_[A-Za-z]{2,3})?([.][A-Za-z0-9-]+)?(@[A-Za-z0-9]+)?$`)

// prepare checks the minimize block and fills in its defaults.
func (m *MinimizeConfig) prepare() []error {
	var errs []error
	add := func(format string, a ...interface{}) { errs = append(errs, fmt.Errorf(format, a...)) }
	if m.Enabled == nil {
		t := true
		m.Enabled = &t
	}
	if m.Locales == nil {
		m.Locales = []string{"C.UTF-8"}
	}
	for _, l := range m.Locales {
		if !localeRe.MatchString(l) {
			add("minimize.locales: %q is not a locale name such as en_US.UTF-8", l)
		}
	}
	for _, p := range m.RemovePackages {
		if !dpkg.ValidName(p) {
			add("minimize.remove_packages: %q is not a package name", p)
		}
	}
	for _, g := range m.RemoveFiles {
		if !strings.HasPrefix(g, "/") || hasDotDot(g) || g == "/" {
			add("minimize.remove_files: %q must be an absolute glob inside the image, without \"..\", and not /", g)
		} else if _, err := path.Match(g, "/x"); err != nil {
			add("minimize.remove_files: %q is not a glob: %v", g, err)
		}
	}
	if !*m.Enabled && (len(m.RemovePackages) > 0 || len(m.RemoveFiles) > 0) {
		add("minimize: remove_packages and remove_files need enabled = true")
	}
	return errs
}
