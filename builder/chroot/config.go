//go:generate packer-sdc mapstructure-to-hcl2 -type Config,BootstrapConfig,MountConfig
//go:generate packer-sdc struct-markdown

package chroot

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/hashicorp/packer-plugin-sdk/common"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
	"github.com/hashicorp/packer-plugin-sdk/template/config"
	"github.com/hashicorp/packer-plugin-sdk/template/interpolate"

	"github.com/strata-build/packer-plugin-strata/export"
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

// MountConfig is an extra mount inside the chroot.
type MountConfig struct {
	// File system type (`tmpfs`, `proc`, ...) or `bind` for a bind mount.
	Type string `mapstructure:"type" required:"true"`
	// What to mount: a host path for `bind`, a device or a name otherwise.
	Source string `mapstructure:"source" required:"false"`
	// Where, as an absolute path inside the image. It is resolved inside the
	// image root, so symlinks in the image never lead out to the host.
	Target string `mapstructure:"target" required:"true"`
	// Mount options, comma separated as mount(8) takes them (`ro`, `size=1g`).
	Options string `mapstructure:"options" required:"false"`
}

// Config is the strata-chroot builder's configuration.
type Config struct {
	common.PackerConfig `mapstructure:",squash"`

	// Build the root file system from scratch with mmdebstrap. Exactly one of
	// `bootstrap` and `source_archive` must be set.
	Bootstrap *BootstrapConfig `mapstructure:"bootstrap" required:"false"`
	// A root file system tarball to start from: `.tar`, `.tar.gz`, `.tar.zst`
	// or `.tar.xz`. Exactly one of `bootstrap` and `source_archive` must be set.
	SourceArchive string `mapstructure:"source_archive" required:"false"`

	// The store root. Defaults to `$STRATA_HOME`, else `/var/lib/strata`.
	StoreDir string `mapstructure:"store_dir" required:"false"`
	// Where the build mounts and assembles its tree. Defaults to
	// `<store_dir>/work/<build name>`. A build first cleans what a killed
	// earlier build left here (processes and mounts); two builds can't share it.
	WorkDir string `mapstructure:"work_dir" required:"false"`
	// The persistent package cache shared by builds. Defaults to
	// `<store_dir>/cache/apt`. It is never part of an image.
	PackageCacheDir string `mapstructure:"package_cache_dir" required:"false"`

	// Extra mounts, made after proc, sys, dev, dev/pts and run, and
	// unmounted before them.
	ChrootMounts []MountConfig `mapstructure:"chroot_mounts" required:"false"`
	// Host commands run before anything is mounted. `{{ .MountPath }}` is the
	// image root on the host.
	PreMountCommands []string `mapstructure:"pre_mount_commands" required:"false"`
	// Host commands run after the mounts are made.
	PostMountCommands []string `mapstructure:"post_mount_commands" required:"false"`
	// Host commands run after provisioning, before anything is unmounted.
	PreUnmountCommands []string `mapstructure:"pre_unmount_commands" required:"false"`
	// A template every command run in the chroot (and every host hook) goes
	// through, such as `sudo {{ .Command }}`. Defaults to `{{ .Command }}`.
	CommandWrapper string `mapstructure:"command_wrapper" required:"false"`
	// How the chroot resolves names during the build: `copy-host` copies the
	// host's /etc/resolv.conf in, `bind-host` bind-mounts it read-only, `none`
	// leaves the image's alone. The image's own file or symlink is put back
	// exactly afterwards. Defaults to `copy-host`.
	ResolvConf string `mapstructure:"resolv_conf" required:"false"`
	// Install a policy-rc.d that stops package scripts from starting services
	// during the build; it is removed afterwards. Defaults to `true`.
	PreventServiceStart *bool `mapstructure:"prevent_service_start" required:"false"`
	// Environment variables for every command run in the chroot, on top of
	// PATH, HOME=/root, LANG=C.UTF-8 and DEBIAN_FRONTEND=noninteractive.
	Environment map[string]string `mapstructure:"environment" required:"false"`

	// Where the outputs go. Defaults to `output-<build name>`. The build
	// refuses an existing directory unless packer runs with `-force`.
	OutputDir string `mapstructure:"output_dir" required:"false"`
	// Output formats, any of `dir`, `tar`, `tar.gz`, `tar.zst`, `squashfs`
	// (zstd) and `ext4` (a raw ext4 file system image). Defaults to `["tar.zst"]`.
	Formats []string `mapstructure:"formats" required:"false"`
	// Free space an `ext4` image gets beyond its content, such as `512M` or
	// `2G` (binary units). Defaults to `64M`.
	Ext4FreeSpace string `mapstructure:"ext4_free_space" required:"false"`

	ext4FreeBytes int64
	ctx           interpolate.Context
}

// Defaults shared by docs and code.
const (
	DefaultStoreDir      = "/var/lib/strata"
	DefaultVariant       = "minbase"
	DefaultResolvConf    = "copy-host"
	DefaultExt4FreeSpace = "64M"
	DefaultFormat        = "tar.zst"
)

// hostRoot is where the host's apt configuration is read from; tests move it.
var hostRoot = "/"

var (
	variants     = []string{"extract", "custom", "essential", "apt", "required", "minbase", "buildd", "important", "debootstrap", "standard"}
	resolvModes  = []string{"copy-host", "bind-host", "none"}
	archiveExts  = []string{".tar", ".tar.gz", ".tgz", ".tar.zst", ".tar.zstd", ".tar.xz"}
	suiteRe      = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]*$`)
	componentRe  = regexp.MustCompile(`^[a-z0-9][a-z0-9/-]*$`)
	packageRe    = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]+(:[a-z0-9-]+)?(=[A-Za-z0-9.+~:-]+)?$`)
	envNameRe    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	mountTypeRe  = regexp.MustCompile(`^[a-z0-9._-]+$`)
	sizeRe       = regexp.MustCompile(`^([0-9]+)\s*([KMGT]?)(iB|B)?$`)
	reservedDirs = []string{"/proc", "/sys", "/dev", "/dev/pts", "/run"}
)

// Prepare decodes raws into c and checks all of it, returning every problem
// at once, each naming its option and the fix.
func (c *Config) Prepare(raws ...interface{}) ([]string, error) {
	err := config.Decode(c, &config.DecodeOpts{
		PluginType:         BuilderID,
		Interpolate:        true,
		InterpolateContext: &c.ctx,
		InterpolateFilter: &interpolate.RenderFilter{
			// Rendered at run time, when the mount path is known.
			Exclude: []string{"pre_mount_commands", "post_mount_commands", "pre_unmount_commands", "command_wrapper"},
		},
	}, raws...)
	if err != nil {
		return nil, err
	}
	var errs *packersdk.MultiError
	add := func(format string, a ...interface{}) {
		errs = packersdk.MultiErrorAppend(errs, fmt.Errorf(format, a...))
	}
	var warnings []string

	if c.StoreDir == "" {
		c.StoreDir = os.Getenv("STRATA_HOME")
	}
	if c.StoreDir == "" {
		c.StoreDir = DefaultStoreDir
	}
	name := c.PackerBuildName
	if name == "" {
		name = "strata"
	}
	if c.WorkDir == "" {
		c.WorkDir = filepath.Join(c.StoreDir, "work", name)
	}
	if c.PackageCacheDir == "" {
		c.PackageCacheDir = filepath.Join(c.StoreDir, "cache", "apt")
	}
	for opt, p := range map[string]*string{"store_dir": &c.StoreDir, "work_dir": &c.WorkDir, "package_cache_dir": &c.PackageCacheDir} {
		abs, err := filepath.Abs(*p)
		if err != nil {
			add("%s: %v", opt, err)
			continue
		}
		*p = abs
		if abs == "/" {
			add("%s: must not be /; choose a directory of its own", opt)
		}
	}
	if c.OutputDir == "" {
		c.OutputDir = "output-" + name
	}
	if c.CommandWrapper == "" {
		c.CommandWrapper = "{{.Command}}"
	}
	if c.ResolvConf == "" {
		c.ResolvConf = DefaultResolvConf
	}
	if c.PreventServiceStart == nil {
		t := true
		c.PreventServiceStart = &t
	}
	if len(c.Formats) == 0 {
		c.Formats = []string{DefaultFormat}
	}
	if c.Ext4FreeSpace == "" {
		c.Ext4FreeSpace = DefaultExt4FreeSpace
	}

	switch {
	case c.Bootstrap == nil && c.SourceArchive == "":
		add("no root file system source: set either a `bootstrap { suite = \"bookworm\" }` block or `source_archive` (a rootfs tarball)")
	case c.Bootstrap != nil && c.SourceArchive != "":
		add("bootstrap and source_archive are both set: keep exactly one source for the root file system")
	}
	if c.Bootstrap != nil {
		for _, e := range c.Bootstrap.prepare() {
			errs = packersdk.MultiErrorAppend(errs, e)
		}
	}
	if c.SourceArchive != "" {
		if !hasAnySuffix(c.SourceArchive, archiveExts) {
			add("source_archive: %q has an unknown extension; use one of %s", c.SourceArchive, strings.Join(archiveExts, ", "))
		} else if fi, err := os.Stat(c.SourceArchive); err != nil {
			add("source_archive: %v; point it at an existing rootfs tarball", err)
		} else if !fi.Mode().IsRegular() {
			add("source_archive: %q is not a regular file", c.SourceArchive)
		}
	}

	seenTargets := map[string]bool{}
	for i, m := range c.ChrootMounts {
		where := fmt.Sprintf("chroot_mounts[%d]", i)
		if m.Type == "" || !mountTypeRe.MatchString(m.Type) {
			add("%s.type: %q is not a file system type; use e.g. \"tmpfs\" or \"bind\"", where, m.Type)
		}
		if !strings.HasPrefix(m.Target, "/") || hasDotDot(m.Target) {
			add("%s.target: %q must be an absolute path inside the image without \"..\"", where, m.Target)
		} else {
			t := filepath.Clean(m.Target)
			if t == "/" || slices.Contains(reservedDirs, t) {
				add("%s.target: %q is mounted by the builder itself; pick another target", where, t)
			}
			if seenTargets[t] {
				add("%s.target: %q is mounted twice", where, t)
			}
			seenTargets[t] = true
		}
		if m.Type == "bind" {
			if m.Source == "" {
				add("%s.source: a bind mount needs a host path to bind", where)
			} else if _, err := os.Stat(m.Source); err != nil {
				add("%s.source: %v", where, err)
			}
		}
		if m.Source == "" {
			c.ChrootMounts[i].Source = m.Type
		}
	}
	if !slices.Contains(resolvModes, c.ResolvConf) {
		add("resolv_conf: %q is not one of %s", c.ResolvConf, strings.Join(resolvModes, ", "))
	}
	for k := range c.Environment {
		if !envNameRe.MatchString(k) {
			add("environment: %q is not a valid variable name (letters, digits and _, not starting with a digit)", k)
		}
	}
	for _, t := range []struct {
		opt  string
		list []string
	}{{"pre_mount_commands", c.PreMountCommands}, {"post_mount_commands", c.PostMountCommands}, {"pre_unmount_commands", c.PreUnmountCommands}, {"command_wrapper", []string{c.CommandWrapper}}} {
		for i, cmd := range t.list {
			if _, err := interpolate.Render(cmd, &interpolate.Context{Data: hookData{MountPath: "/x", Command: "x"}}); err != nil {
				add("%s[%d]: bad template %q: %v", t.opt, i, cmd, err)
			}
		}
	}

	seen := map[string]bool{}
	for _, f := range c.Formats {
		if !export.IsFormat(f) {
			add("formats: %q is not a format; use any of %s", f, strings.Join(export.Formats, ", "))
		} else if seen[f] {
			add("formats: %q is listed twice", f)
		}
		seen[f] = true
	}
	if n, err := ParseSize(c.Ext4FreeSpace); err != nil {
		add("ext4_free_space: %v", err)
	} else {
		c.ext4FreeBytes = n
	}
	if seen["ext4"] {
		if _, err := lookPath("mke2fs"); err != nil {
			add("formats: ext4 needs mke2fs on the build host; install e2fsprogs")
		}
	}
	if seen["squashfs"] {
		if _, err := lookPath("mksquashfs"); err != nil {
			add("formats: squashfs needs mksquashfs on the build host; install squashfs-tools")
		}
	}
	if c.Bootstrap != nil {
		if _, err := lookPath("mmdebstrap"); err != nil {
			add("bootstrap: needs mmdebstrap on the build host; install the mmdebstrap package")
		}
	}
	if errs != nil && len(errs.Errors) > 0 {
		return warnings, errs
	}
	return warnings, nil
}

func (b *BootstrapConfig) prepare() []error {
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
	if len(b.Components) == 0 {
		b.Components = []string{"main"}
	}
	for _, c := range b.Components {
		if !componentRe.MatchString(c) {
			add("bootstrap.components: %q is not a component name", c)
		}
	}
	for _, p := range b.Include {
		if !packageRe.MatchString(p) {
			add("bootstrap.include: %q is not a package name (optionally name=version)", p)
		}
	}
	if b.Mirror == "" {
		m, err := pkgcache.HostMirror(hostRoot)
		if err != nil {
			add("bootstrap.mirror: not set, and the build host's apt sources could not be read (%v); set mirror to your Debian mirror's URL", err)
		} else if m == "" {
			add("bootstrap.mirror: not set, and the build host's apt sources name no Debian mirror with a main component; set mirror to your Debian mirror's URL")
		}
		b.Mirror = m
	} else if !hasAnyPrefix(b.Mirror, []string{"http://", "https://", "file://", "copy://", "mirror+"}) {
		add("bootstrap.mirror: %q is not a URL; use http://, https:// or file://", b.Mirror)
	}
	if b.Keyring != "" {
		if _, err := os.Stat(b.Keyring); err != nil {
			add("bootstrap.keyring: %v; point it at a keyring file or directory", err)
		}
	}
	return errs
}

// ParseSize reads sizes like "64M", "2G", "512MiB" or a plain byte count.
func ParseSize(s string) (int64, error) {
	m := sizeRe.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return 0, fmt.Errorf("%q is not a size; write a number with an optional K, M, G or T suffix, such as \"512M\"", s)
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q: %v", s, err)
	}
	shift := map[string]uint{"": 0, "K": 10, "M": 20, "G": 30, "T": 40}[m[2]]
	if n > (1<<62)>>shift {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return n << shift, nil
}

func hasAnySuffix(s string, suffixes []string) bool {
	for _, x := range suffixes {
		if strings.HasSuffix(s, x) {
			return true
		}
	}
	return false
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, x := range prefixes {
		if strings.HasPrefix(s, x) {
			return true
		}
	}
	return false
}

func hasDotDot(p string) bool {
	for _, part := range strings.Split(p, "/") {
		if part == ".." {
			return true
		}
	}
	return false
}

// lookPath finds host programs; tests replace it to check the errors.
var lookPath = exec.LookPath
