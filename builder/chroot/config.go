//go:generate packer-sdc mapstructure-to-hcl2 -type Config,BootstrapConfig,MountConfig,PackageCacheConfig,MinimizeConfig,DiskConfig,BootcheckConfig
//go:generate packer-sdc struct-markdown

package chroot

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/hashicorp/packer-plugin-sdk/common"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
	"github.com/hashicorp/packer-plugin-sdk/template/config"
	"github.com/hashicorp/packer-plugin-sdk/template/interpolate"

	"github.com/strata-build/packer-plugin-strata/internal/debarch"
	"github.com/strata-build/packer-plugin-strata/internal/rpcvalue"
	"github.com/strata-build/packer-plugin-strata/internal/storeroot"
	"github.com/strata-build/packer-plugin-strata/layer"
)

// Config is the strata-chroot builder's configuration.
type Config struct {
	common.PackerConfig `mapstructure:",squash"`

	// Build the root file system from scratch with mmdebstrap. Exactly one of
	// `bootstrap`, `source_archive` and `parent` must be set.
	Bootstrap *BootstrapConfig `mapstructure:"bootstrap" required:"false"`
	// A root file system tarball to start from: `.tar`, `.tar.gz`, `.tar.zst`
	// or `.tar.xz`. Exactly one of `bootstrap`, `source_archive` and `parent`
	// must be set.
	SourceArchive string `mapstructure:"source_archive" required:"false"`
	// An image in the store to build on, by its ID (`sha256:...`, or a
	// unique prefix of 12 or more hex digits), such as
	// `data.strata-image.base.image_id`. Its layers become the overlay's
	// lower dirs and nothing is copied: the build's result is one new layer
	// on top. An image built on another host and pushed to a registry
	// (strata-catalog's `push`) that the store lacks is pulled, every blob
	// verified, from the reference the catalog (`$STRATA_CATALOG`, else the
	// store's) recorded; `$STRATA_INSECURE_REGISTRIES` lists plain-http
	// registries. Exactly one of `bootstrap`, `source_archive` and `parent`
	// must be set.
	Parent string `mapstructure:"parent" required:"false"`
	// The image's Debian architecture, such as `arm64`, `armhf` or
	// `riscv64` (any name `dpkg-architecture -L` knows as a Debian
	// architecture). Defaults to the build host's (`dpkg
	// --print-architecture`). For another architecture than the host's the
	// host runs the image's programs through QEMU's user-mode emulators:
	// before anything is mounted the build mounts binfmt_misc if it is not
	// (and unmounts it afterwards), and needs a handler with the F flag for
	// the architecture, registering it from qemu-user-static's binfmt.d file
	// when it is installed and no handler is (and removing it afterwards).
	// No emulator is copied into the image. A `parent` must be of this
	// architecture. The `disk` output is made for amd64 and arm64.
	Architecture string `mapstructure:"architecture" required:"false"`
	// A name for the parent, such as `base-os@1.0.3`, for the OCI output's
	// `org.opencontainers.image.base.name` annotation.
	ParentName string `mapstructure:"parent_name" required:"false"`

	// The store root. Defaults to `$STRATA_HOME`, else `/var/lib/strata`. It
	// must belong to root and not be writable by other users; the builder
	// creates it (and everything in it) with mode 0700.
	StoreDir string `mapstructure:"store_dir" required:"false"`
	// Where the build mounts and assembles its tree. Defaults to
	// `<store_dir>/work/<build name>`. When one source is used more than
	// once in a build (`source "strata-chroot.base" { name = "one" }`,
	// `{ name = "two" }`), Packer gives each the same build name, the
	// source's label: the first gets `<build name>`, the others
	// `<build name>.2`, `.3` in the template's order, for this default and
	// output_dir's. It must be empty, new, or a work dir of this same build:
	// a build first undoes exactly what a killed earlier build with this
	// work dir recorded (its processes and mounts, nothing else), and two
	// builds can't share it.
	WorkDir string `mapstructure:"work_dir" required:"false"`
	// Where the image's root is mounted on the host during the build, for
	// hooks, `shell-local` and static inventories. Defaults to
	// `<work_dir>/rootfs`. It must be an empty or new directory.
	MountPath string `mapstructure:"mount_path" required:"false"`
	// The package cache. See the `package_cache` block.
	PackageCache *PackageCacheConfig `mapstructure:"package_cache" required:"false"`
	// Deprecated: use `package_cache { dir = ... }`.
	PackageCacheDir string `mapstructure:"package_cache_dir" required:"false"`

	// Extra mounts, made after proc, sys, dev, dev/pts and run, and
	// unmounted before them. amazon-chroot's and arm-image's list form
	// `chroot_mounts = [["tmpfs", "tmpfs", "/var/tmp"]]` (type, source, target)
	// works too, in HCL and JSON templates; entries for proc, sys, dev and
	// dev/pts are dropped with a warning, the builder mounts those itself.
	ChrootMounts []MountConfig `mapstructure:"chroot_mounts" required:"false"`
	// Host commands run before anything is mounted. `{{ .MountPath }}` is the
	// image root on the host; user variables, `{{ build_name }}` and the rest
	// of Packer's template functions work as in any option.
	PreMountCommands []string `mapstructure:"pre_mount_commands" required:"false"`
	// Host commands run after the mounts are made.
	PostMountCommands []string `mapstructure:"post_mount_commands" required:"false"`
	// Host commands run after provisioning, before anything is unmounted.
	PreUnmountCommands []string `mapstructure:"pre_unmount_commands" required:"false"`
	// A template every command run in the chroot (and every host hook) goes
	// through, such as `sudo {{ .Command }}`. It must use `{{ .Command }}`.
	// Defaults to `{{ .Command }}`.
	CommandWrapper string `mapstructure:"command_wrapper" required:"false"`
	// How the chroot resolves names during the build: `copy-host` copies the
	// host's /etc/resolv.conf in, `bind-host` bind-mounts it read-only, `none`
	// leaves the image's alone. Afterwards the image's own file or symlink is
	// put back exactly, unless a provisioner replaced it: then the image keeps
	// the provisioner's, and the build says so. Defaults to `copy-host`.
	ResolvConf string `mapstructure:"resolv_conf" required:"false"`
	// Install a policy-rc.d that stops package scripts from starting services
	// during the build; it is removed afterwards. Defaults to `true`.
	PreventServiceStart *bool `mapstructure:"prevent_service_start" required:"false"`
	// Environment variables for every command run in the chroot, on top of
	// PATH, HOME=/root, LANG=C.UTF-8 and DEBIAN_FRONTEND=noninteractive. They
	// apply inside the chroot only (PATH too), never to host commands.
	Environment map[string]string `mapstructure:"environment" required:"false"`

	// Where the outputs go. Defaults to `output-<build name>` (see
	// work_dir for a source used twice; `output-${source.name}` names it
	// yourself). The build refuses an existing directory unless packer runs
	// with `-force`, and then removes only the outputs an earlier build
	// recorded in the directory's `artifact.json`: a directory holding
	// anything else, or one no build made, is refused and left as it is.
	// It must not overlap `store_dir`, `work_dir` or `mount_path`, compared
	// where the paths lead (symlinks followed), when the build starts and
	// again before anything is deleted.
	OutputDir string `mapstructure:"output_dir" required:"false"`
	// Output formats, any of `dir`, `tar`, `tar.gz`, `tar.zst`, `squashfs`,
	// `ext4` (a raw ext4 file system image), `disk` (`disk.raw`, a GPT disk
	// image that boots under UEFI; see the `disk` block) and `oci` (an OCI
	// image layout directory, one blob per layer), or `["none"]`: no output
	// at all, only the image's layers in the store and artifact.json (for a
	// parent image, or one the catalog registers). Defaults to
	// `["tar.zst"]`.
	Formats []string `mapstructure:"formats" required:"false"`
	// The `oci` output's layer compression: `gzip` or `zstd`. Defaults to
	// `gzip`, which every OCI tool reads.
	OCICompression string `mapstructure:"oci_compression" required:"false"`
	// Labels for the image's OCI config, on top of the parent's.
	Labels map[string]string `mapstructure:"labels" required:"false"`
	// The image's version, for the `org.opencontainers.image.version`
	// annotation and label.
	ImageVersion string `mapstructure:"image_version" required:"false"`
	// What to leave out of the image. See the `minimize` block.
	Minimize *MinimizeConfig `mapstructure:"minimize" required:"false"`
	// Boot the `disk` output under QEMU before the build succeeds. See the
	// `bootcheck` block.
	Bootcheck *BootcheckConfig `mapstructure:"bootcheck" required:"false"`
	// Globs of the only packages the finished image may hold, such as
	// `["lib*", "apt", "base-files", "nginx*"]`. A package matching none
	// fails the build, listing every offender. Empty: any package.
	AllowedPackages []string `mapstructure:"allowed_packages" required:"false"`
	// Globs of packages the finished image must not hold, such as
	// `["*-dev", "gcc*", "openssh-server"]`.
	DeniedPackages []string `mapstructure:"denied_packages" required:"false"`
	// Paths allowed to keep a setuid or setgid bit. Defaults to those a
	// Debian minbase ships: chage, chfn, chsh, expiry, gpasswd, mount,
	// newgrp, passwd, su and umount in /usr/bin, and /usr/sbin/unix_chkpwd.
	// Setting it replaces that list; to add to it, use `allowed_setuid_extra`.
	// Any other setuid or setgid file fails the build, listing every one with
	// the package that brought it and the `allowed_setuid_extra` line that
	// allows them.
	AllowedSetuid []string `mapstructure:"allowed_setuid" required:"false"`
	// More paths allowed a setuid or setgid bit, on top of `allowed_setuid`
	// (its defaults unless you set it), such as `["/usr/bin/sudo",
	// "/usr/lib/openssh/ssh-keysign"]` for sudo and openssh-client.
	AllowedSetuidExtra []string `mapstructure:"allowed_setuid_extra" required:"false"`
	// Clear the setuid and setgid bits of the files allowed_setuid does not
	// list, instead of failing the build.
	StripSetuid bool `mapstructure:"strip_setuid" required:"false"`
	// Seconds since 1970 that every timestamp of the image is capped at
	// (file mtimes in layers and outputs, the config's creation time), so
	// that the same template against an unchanged mirror gives the same
	// layer diffIDs and image ID. Defaults to `$SOURCE_DATE_EPOCH` when set.
	// The image's machine-id, ldconfig's aux-cache and apt and dpkg logs are
	// removed or emptied as in every build.
	SourceDateEpoch *int64 `mapstructure:"source_date_epoch" required:"false"`
	// Free space an `ext4` image gets beyond its content, such as `512M` or
	// `2G` (binary units, at most 16T). Defaults to `64M`.
	Ext4FreeSpace string `mapstructure:"ext4_free_space" required:"false"`
	// Bytes of free space per free inode in an `ext4` image, as mke2fs's
	// inode ratio: the image gets the inodes its content uses plus
	// `ext4_free_space / ext4_inode_ratio` free ones. Defaults to `16384`.
	Ext4InodeRatio int `mapstructure:"ext4_inode_ratio" required:"false"`
	// The `squashfs` compressor: `zstd` or `zstd:LEVEL` (1-22), `xz`,
	// `gzip` or `lz4`. Defaults to `zstd:3`, which writes about as fast as
	// `tar.zst`; `zstd:19` or `xz` make smaller images much more slowly.
	SquashfsCompression string `mapstructure:"squashfs_compression" required:"false"`
	// The `disk` output's shape. See the `disk` block.
	Disk *DiskConfig `mapstructure:"disk" required:"false"`

	ext4FreeBytes int64
	// configHash is "sha256:<hex>" of the configuration Packer handed the
	// builder (variables resolved), recorded as the version's template hash.
	configHash string
	chrootPath string // the host's chroot(8)
	// host is the build host the build changes and reads (osHost unless a
	// test gives its fake).
	host     host
	parentID string // the parent's full image ID
	snapshot map[string]string
	ctx      interpolate.Context
}

// Defaults shared by docs and code.
const (
	DefaultVariant             = "minbase"
	DefaultResolvConf          = "copy-host"
	DefaultExt4FreeSpace       = "64M"
	DefaultExt4InodeRatio      = 16384
	DefaultFormat              = "tar.zst"
	DefaultSquashfsCompression = "zstd:3"
	DefaultOCICompression      = "gzip"
	maxExt4FreeSpace           = 16 << 40
)

var (
	resolvModes = []string{"copy-host", "bind-host", "none"}
	archiveExts = []string{".tar", ".tar.gz", ".tgz", ".tar.zst", ".tar.zstd", ".tar.xz"}
	envNameRe   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// Prepare decodes raws into c and checks all of it, returning every problem
// at once, each naming its option and the fix, in the order options appear
// in the docs.
func (c *Config) Prepare(raws ...interface{}) ([]string, error) {
	raws, err := plainRaws(raws)
	if err != nil {
		return nil, err
	}
	// As Packer's SDK does: a config is prepared from scratch. The host is
	// not configuration.
	*c = Config{host: c.host}
	if c.host == nil {
		c.host = osHost{}
	}
	warnings := mountLists(raws)
	c.configHash = hashConfig(raws)
	var errs *packersdk.MultiError
	add := func(format string, a ...interface{}) {
		errs = packersdk.MultiErrorAppend(errs, fmt.Errorf(format, a...))
	}
	// Other builders' options, and template fields there are none of.
	for _, h := range foreignHints(raws) {
		add("%s", h)
	}
	checkRawTemplates(raws, add)
	err = config.Decode(c, &config.DecodeOpts{
		PluginType:         BuilderID,
		Interpolate:        true,
		InterpolateContext: &c.ctx,
		InterpolateFilter: &interpolate.RenderFilter{
			// Rendered at run time, when the mount path is known.
			Exclude: renderedLater,
		},
	}, raws...)
	if err != nil {
		return warnings, packersdk.MultiErrorAppend(errs, err)
	}

	name := c.PackerBuildName
	if name == "" {
		name = "strata"
	}
	if c.WorkDir == "" || c.OutputDir == "" {
		name = defaultDirName(name)
	}
	store, err := storeroot.Resolve(c.StoreDir)
	if err != nil {
		add("store_dir: %v", err)
	}
	c.StoreDir = store
	layout := storeroot.Layout{Root: store}
	if c.WorkDir == "" {
		c.WorkDir = layout.WorkDir(name)
	}
	if c.PackageCache == nil {
		c.PackageCache = &PackageCacheConfig{}
	}
	if c.PackageCacheDir != "" {
		warnings = append(warnings, "package_cache_dir is deprecated: write package_cache { dir = \""+c.PackageCacheDir+"\" }")
		if c.PackageCache.Dir == "" {
			c.PackageCache.Dir = c.PackageCacheDir
		}
	}
	if c.PackageCache.Dir == "" {
		c.PackageCache.Dir = layout.PackageCache()
	}
	if c.PackageCache.Enabled == nil {
		t := true
		c.PackageCache.Enabled = &t
	}
	if c.OutputDir == "" {
		c.OutputDir = "output-" + name
	}
	// As written here; the build checks them again where they lead
	// (checkHost), with the rest of the host's state.
	for _, e := range c.preparePaths(layout) {
		errs = packersdk.MultiErrorAppend(errs, e)
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

	sources := 0
	for _, set := range []bool{c.Bootstrap != nil, c.SourceArchive != "", c.Parent != ""} {
		if set {
			sources++
		}
	}
	switch {
	case sources == 0:
		add("no root file system source: set a `bootstrap { suite = \"bookworm\" }` block, `source_archive` (a rootfs tarball) or `parent` (an image in the store)")
	case sources > 1 && c.Bootstrap != nil && c.SourceArchive != "" && c.Parent == "":
		add("bootstrap and source_archive are both set: keep exactly one source for the root file system")
	case sources > 1:
		add("more than one of bootstrap, source_archive and parent is set: keep exactly one source for the root file system")
	}
	if c.Minimize == nil {
		c.Minimize = &MinimizeConfig{}
	}
	for _, e := range c.Minimize.prepare() {
		errs = packersdk.MultiErrorAppend(errs, e)
	}
	c.prepareContents(add)
	for _, e := range c.PackageCache.prepare(c) {
		errs = packersdk.MultiErrorAppend(errs, e)
	}
	c.prepareOCICompression(add)
	if c.SourceDateEpoch == nil {
		if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil || n < 0 {
				add("source_date_epoch: $SOURCE_DATE_EPOCH %q is not a number of seconds", s)
			} else {
				c.SourceDateEpoch = &n
			}
		}
	} else if *c.SourceDateEpoch < 0 {
		add("source_date_epoch: %d is before 1970", *c.SourceDateEpoch)
	}
	for _, k := range sortedKeys(c.Labels) {
		if k == "" || strings.ContainsAny(k+c.Labels[k], "\x00\n\r") {
			add("labels: %q: label names must not be empty, and names and values hold no newlines", k)
		}
	}
	if c.Bootstrap != nil {
		for _, e := range c.Bootstrap.prepare(c.host.Root()) {
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

	c.prepareArchitecture(add)
	c.prepareMounts(add)
	c.checkTemplates(add)
	if !slices.Contains(resolvModes, c.ResolvConf) {
		add("resolv_conf: %q is not one of %s", c.ResolvConf, strings.Join(resolvModes, ", "))
	}
	for _, k := range sortedKeys(c.Environment) {
		if !envNameRe.MatchString(k) {
			add("environment: %q is not a valid variable name (letters, digits and _, not starting with a digit)", k)
		}
	}

	c.prepareOutputs(add)
	c.prepareDisk(add)
	c.prepareBootcheck(add)
	if c.Bootstrap != nil {
		if _, err := c.host.LookPath("mmdebstrap"); err != nil {
			add("bootstrap: needs mmdebstrap on the build host; install the mmdebstrap package")
		}
	}
	if c.chrootPath, err = c.host.LookPath("chroot"); err != nil {
		add("the build host has no chroot(8) (coreutils); install coreutils")
	}
	if errs != nil && len(errs.Errors) > 0 {
		return warnings, errs
	}
	return warnings, nil
}

// prepareArchitecture defaults architecture to the host's and checks it
// names a Debian architecture.
func (c *Config) prepareArchitecture(add func(string, ...interface{})) {
	if c.Architecture == "" {
		a, err := c.host.Arch()
		if err != nil {
			add("architecture: the build host's is unknown (%v); set architecture", err)
			return
		}
		c.Architecture = a
	}
	if _, ok := debarch.Lookup(c.Architecture); !ok {
		add("architecture: %q is not a Debian architecture; use one of %s", c.Architecture, strings.Join(debarch.Names(), ", "))
	}
	if a, ok := debarch.Lookup(c.Architecture); ok && a.Disk == nil && slices.Contains(c.Formats, "disk") {
		add("formats: the disk output boots %s images only, and architecture is %s; drop \"disk\" or build for one of them", strings.Join(debarch.DiskArches(), " and "), c.Architecture)
	}
}

// checkParent resolves parent in the store: it must be there whole, and the
// store must be able to hold an overlay's upper dir.
func (c *Config) checkParent(ctx context.Context, layout storeroot.Layout) error {
	if _, err := c.layerImage(layout); errors.Is(err, layer.ErrNotFound) || os.IsNotExist(err) {
		// Built on another host and pushed: fetched from the registry.
		if _, err := pullParent(ctx, layout, c.Parent); err != nil {
			return err
		}
	}
	if _, err := os.Stat(layout.Layers()); err != nil {
		return fmt.Errorf("%s: the store %s has no images yet; build the parent first (or set store_dir to its store)", c.Parent, c.StoreDir)
	}
	store, err := layer.Open(layout.Layers())
	if err != nil {
		return err
	}
	img, err := store.Image(c.Parent)
	if err != nil {
		return fmt.Errorf("%v; list the store's images with `strata layers` or pick one with the strata-image data source (which pulls an image built on another host from the registry it was pushed to; `strata pull NAME@VERSION` does it by hand)", err)
	}
	if err := store.Complete(img); err != nil {
		return err
	}
	if err := c.checkParentArch(img); err != nil {
		return err
	}
	c.parentID = img.ID
	return checkOverlayUpper(c.WorkDir)
}

// layerImage is parent in the store, when the store exists.
func (c *Config) layerImage(layout storeroot.Layout) (*layer.Image, error) {
	store, err := layer.OpenExisting(layout.Layers())
	if err != nil {
		return nil, os.ErrNotExist
	}
	return store.Image(c.Parent)
}

// checkParentArch: a child is of its parent's architecture.
func (c *Config) checkParentArch(img *layer.Image) error {
	pc, err := img.ConfigFile()
	if err != nil {
		return fmt.Errorf("%s's config: %w", img.ID, err)
	}
	want, _ := debarch.Lookup(c.Architecture)
	if pc.Architecture == want.OCI && (pc.Variant == "" || pc.Variant == want.Variant) {
		return nil
	}
	platform := pc.OS + "/" + pc.Architecture
	if pc.Variant != "" {
		platform += "/" + pc.Variant
	}
	name := "of another architecture"
	if a, ok := debarch.FromOCI(pc.Architecture, pc.Variant); ok {
		name = fmt.Sprintf("Debian's %s", a.Name)
		return fmt.Errorf("%s is a %s image (%s) and this build's architecture is %s: a child must be of its parent's architecture; set architecture = %q, or pick the parent's %s image (the strata-image data source's architecture option)",
			layer.ShortDigest(img.ID), platform, name, c.Architecture, a.Name, c.Architecture)
	}
	return fmt.Errorf("%s is a %s image (%s) and this build's architecture is %s: a child must be of its parent's architecture",
		layer.ShortDigest(img.ID), platform, name, c.Architecture)
}

// render renders a hook or wrapper template with the config's template
// context (user variables, build name and type, Packer's version) and data.
func (c *Config) render(tmpl string, data hookData) (string, error) {
	ctx := c.ctx
	ctx.Data = data
	return interpolate.Render(tmpl, &ctx)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func hasAnySuffix(s string, suffixes []string) bool {
	for _, x := range suffixes {
		if strings.HasSuffix(s, x) {
			return true
		}
	}
	return false
}

func hasDotDot(p string) bool {
	return slices.Contains(strings.Split(p, "/"), "..")
}

// hashConfig is "sha256:<hex>" of the configuration maps as canonical JSON
// (sorted keys), leaving out Packer's own packer_* keys (run flags such as
// -force or -on-error that do not change the image).
func hashConfig(raws []interface{}) string {
	var parts []interface{}
	for _, r := range raws {
		n := rpcvalue.Plain(r)
		if m, ok := n.(map[string]interface{}); ok {
			for k := range m {
				if strings.HasPrefix(k, "packer_") {
					delete(m, k)
				}
			}
		}
		parts = append(parts, n)
	}
	b, err := json.Marshal(parts)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}
