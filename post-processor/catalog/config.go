//go:generate packer-sdc mapstructure-to-hcl2 -type Config
//go:generate packer-sdc struct-markdown

package catalog

import (
	"fmt"
	"os"
	"os/user"
	"regexp"

	"github.com/hashicorp/packer-plugin-sdk/common"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
	"github.com/hashicorp/packer-plugin-sdk/template/config"
	"github.com/hashicorp/packer-plugin-sdk/template/interpolate"

	catalogdb "github.com/strata-build/packer-plugin-strata/catalog"
)

// Config is the strata-catalog post-processor's configuration. It
// registers the artifact of the build before it as a new version of an
// image in the catalog, and points channels at it.
type Config struct {
	common.PackerConfig `mapstructure:",squash"`

	// The catalog: `sqlite:///path/catalog.db` or
	// `postgres://user@host/db`. Defaults to `$STRATA_CATALOG`, else the
	// SQLite catalog in the builder's store (`store_dir`), else the one in
	// `/var/lib/strata`.
	Catalog string `mapstructure:"catalog" required:"false"`
	// The image the artifact is a version of, such as `base-os`.
	ImageName string `mapstructure:"image_name" required:"true"`
	// The version, such as `1.4.0`. Versions are immutable: registering
	// one that exists fails, but for another architecture's image, which
	// joins it. Defaults to the version this packer run registered for
	// another architecture, else the next one `version_scheme` gives.
	Version string `mapstructure:"version" required:"false"`
	// How a version is picked when `version` is not set: `semver` (the
	// next patch of the highest x.y.z, or 1.0.0) or `timestamp` (UTC
	// YYYYMMDD.HHMMSS). Defaults to `semver`.
	VersionScheme string `mapstructure:"version_scheme" required:"false"`
	// Tags of the version.
	Tags []string `mapstructure:"tags" required:"false"`
	// Labels of the version, on top of the image's own labels.
	Labels map[string]string `mapstructure:"labels" required:"false"`
	// Channels to point at the new version, such as `["dev"]`. They move
	// in the transaction that registers the version, after it: a reader
	// never sees a channel on a version that is not fully registered.
	Channels []string `mapstructure:"channels" required:"false"`
	// What this version is, in one line.
	Description string `mapstructure:"description" required:"false"`
	// Who registers, for the channels' history. Defaults to
	// `packer:USER@HOST`.
	Actor string `mapstructure:"actor" required:"false"`
	// Why, for the channels' history. Defaults to `registered by packer
	// build NAME`.
	Reason string `mapstructure:"reason" required:"false"`
	// Register content (an image ID) this image already has under another
	// version. Without it that fails: rebuilding unchanged content is
	// usually a mistake in a pipeline.
	AllowDuplicate bool `mapstructure:"allow_duplicate" required:"false"`
	// OCI registry repositories to push the registered version to, such as
	// `["registry.example:5000/team/base-os"]` (no tag): it is tagged with
	// its version and with each name in `channels`. The push goes straight
	// from the layer store, uploads only the blobs a registry lacks
	// (mounting the parent's from its repository where the registry
	// can), and each reference is recorded on the version with its
	// manifest digest (artifact kind `oci-registry`), so other build hosts
	// pull it. A version with images of several architectures goes as an
	// OCI image index of all of them (each build of the version pushes it
	// again, so the tags end on the index of every architecture); an
	// architecture's image this host lacks is pulled first from the
	// version's recorded references. Credentials come from the Docker
	// config (`~/.docker/config.json`, `DOCKER_CONFIG`) and its credential
	// helpers.
	Push []string `mapstructure:"push" required:"false"`
	// Registries (`host:port`) in `push` reached over plain http, such as a
	// loopback test registry. Every other registry is reached over https
	// with its certificate verified.
	InsecureRegistries []string `mapstructure:"insecure_registries" required:"false"`
	// Compression of the layer blobs pushed: `gzip` (default) or `zstd`.
	PushCompression string `mapstructure:"push_compression" required:"false"`

	ctx interpolate.Context
}

var labelKeyRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._/-]*$`)

// Prepare decodes and checks the configuration, collecting every error.
func (c *Config) Prepare(raws ...interface{}) error {
	err := config.Decode(c, &config.DecodeOpts{
		PluginType:         "strata-catalog",
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
	if c.ImageName == "" {
		add("image_name: required, such as \"base-os\"")
	} else if err := catalogdb.ValidName("image", c.ImageName); err != nil {
		add("image_name: %v", err)
	}
	if c.Catalog != "" {
		if catalogdb.CheckURL(c.Catalog) != nil {
			add("catalog: %q is not a catalog URL; use sqlite:///path/catalog.db or postgres://user@host/db", c.Catalog)
		}
	}
	switch c.VersionScheme {
	case "":
		c.VersionScheme = string(catalogdb.SchemeSemver)
	case string(catalogdb.SchemeSemver), string(catalogdb.SchemeTimestamp):
	default:
		add("version_scheme: %q; use semver or timestamp", c.VersionScheme)
	}
	for i, ch := range c.Channels {
		if err := catalogdb.ValidName("channel", ch); err != nil {
			add("channels[%d]: %v", i, err)
		}
	}
	for k := range c.Labels {
		if !labelKeyRe.MatchString(k) {
			add("labels: %q is not a label name (letters, digits, . _ / -)", k)
		}
	}
	// The rest (version syntax, control characters) the catalog checks
	// itself, before anything is written; checking here says it earlier.
	probe := &catalogdb.Version{Image: "x", Version: c.Version, Tags: c.Tags, Labels: c.Labels, Description: c.Description}
	if err := catalogdb.CheckText(probe); err != nil {
		add("%v", err)
	}
	for i, repo := range c.Push {
		if _, err := catalogdb.PushRefs(repo, "1.0.0", c.Channels); err != nil {
			add("push[%d]: %v", i, err)
		}
	}
	switch c.PushCompression {
	case "":
		c.PushCompression = "gzip"
	case "gzip", "zstd":
	default:
		add("push_compression: %q; use gzip or zstd", c.PushCompression)
	}
	if c.Actor == "" {
		who := "packer"
		if u, err := user.Current(); err == nil {
			who += ":" + u.Username
		}
		if h, err := os.Hostname(); err == nil {
			who += "@" + h
		}
		c.Actor = who
	}
	if errs != nil && len(errs.Errors) > 0 {
		return errs
	}
	return nil
}
