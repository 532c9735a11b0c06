//go:generate packer-sdc struct-markdown

package chroot

import (
	"fmt"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"

	"github.com/strata-build/packer-plugin-strata/internal/dpkg"
	"github.com/strata-build/packer-plugin-strata/pkgcache"
)

// BootstrapConfig describes a root file system made from scratch by mmdebstrap.
type BootstrapConfig struct {
	// The Debian suite to bootstrap, such as `bookworm` or `trixie`.
	Suite string `mapstructure:"suite" required:"true"`
	// mmdebstrap's variant. Defaults to `minbase`: essential packages plus apt,
	// on a merged /usr, which is the smallest tree that can still install packages.
	Variant string `mapstructure:"variant" required:"false"`
	// The mirror URL. Defaults to the build host's own Debian mirror, read from
	// its apt sources (`/etc/apt/sources.list` and `sources.list.d/*.list` or `*.sources`).
	Mirror string `mapstructure:"mirror" required:"false"`
	// Archive components. Defaults to `["main"]`.
	Components []string `mapstructure:"components" required:"false"`
	// Extra packages to install into the bootstrapped tree.
	Include []string `mapstructure:"include" required:"false"`
	// A keyring file (or directory of keyrings) to verify the mirror with.
	// Defaults to the build host's apt keyrings.
	Keyring string `mapstructure:"keyring" required:"false"`
}

// What bootstrap accepts.
var (
	variants    = []string{"extract", "custom", "essential", "apt", "required", "minbase", "buildd", "important", "debootstrap", "standard"}
	suiteRe     = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]*$`)
	componentRe = regexp.MustCompile(`^[a-z0-9][a-z0-9/-]*$`)
)

// prepare checks the bootstrap block and fills in its defaults.
func (b *BootstrapConfig) prepare(hostRoot string) []error {
	var errs []error
	add := func(format string, a ...interface{}) { errs = append(errs, fmt.Errorf(format, a...)) }
	if b.Suite == "" {
		add("bootstrap.suite: required; name a Debian suite such as \"bookworm\"")
	} else if !suiteRe.MatchString(b.Suite) {
		add("bootstrap.suite: %q is not a suite name (lowercase letters, digits, '.' and '-')", b.Suite)
	}
	if b.Variant == "" {
		b.Variant = DefaultVariant
	} else if !slices.Contains(variants, b.Variant) {
		add("bootstrap.variant: %q is not an mmdebstrap variant; use one of %s", b.Variant, strings.Join(variants, ", "))
	}
	if b.Mirror == "" {
		m, err := pkgcache.HostMirror(hostRoot)
		if err != nil {
			add("bootstrap.mirror: not set, and the build host's apt sources could not be read (%v); set mirror to your Debian mirror's URL", err)
		} else if m == "" {
			add("bootstrap.mirror: not set, and the build host's apt sources name no Debian mirror with a main component; set mirror to your Debian mirror's URL")
		}
		b.Mirror = m
	} else if err := checkMirrorURL(b.Mirror); err != nil {
		add("bootstrap.mirror: %v", err)
	}
	if len(b.Components) == 0 {
		b.Components = []string{"main"}
	}
	for _, c := range b.Components {
		if !componentRe.MatchString(c) {
			add("bootstrap.components: %q is not a component name", c)
		}
	}
	for _, p := range b.Include {
		if name, version, pinned := strings.Cut(p, "="); !dpkg.ValidName(name) || (pinned && !dpkg.ValidVersion(version)) {
			add("bootstrap.include: %q is not a package name (optionally name=version)", p)
		}
	}
	if b.Keyring != "" {
		if _, err := os.Stat(b.Keyring); err != nil {
			add("bootstrap.keyring: %v; point it at a keyring file or directory", err)
		}
	}
	return errs
}

// checkMirrorURL accepts http(s) URLs with a host and file:// URLs.
func checkMirrorURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || strings.ContainsAny(s, " \t\n") {
		return fmt.Errorf("%q is not a URL; use http://HOST/debian, https://... or file:///path", s)
	}
	switch u.Scheme {
	case "http", "https":
		if u.Host == "" {
			return fmt.Errorf("%q has no host; use http://HOST/debian", s)
		}
	case "file", "copy":
		if u.Path == "" || !strings.HasPrefix(u.Path, "/") {
			return fmt.Errorf("%q needs an absolute path: file:///srv/mirror/debian", s)
		}
	default:
		return fmt.Errorf("%q is not a URL; use http://, https:// or file://", s)
	}
	return nil
}
