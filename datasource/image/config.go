//go:generate packer-sdc mapstructure-to-hcl2 -type Config,DatasourceOutput
//go:generate packer-sdc struct-markdown

package image

import (
	"fmt"
	"strings"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
	"github.com/hashicorp/packer-plugin-sdk/template/config"

	catalogdb "github.com/strata-build/packer-plugin-strata/catalog"
	"github.com/strata-build/packer-plugin-strata/internal/debarch"
)

// Config is the strata-image data source's configuration: an image in the
// catalog and exactly one of channel, version or tag.
type Config struct {
	// The catalog: `sqlite:///path/catalog.db` or
	// `postgres://user@host/db`. Defaults to `$STRATA_CATALOG`, else the
	// SQLite catalog in the store root (`store_dir`).
	Catalog string `mapstructure:"catalog" required:"false"`
	// The store whose layer store holds the images' layers, checked for the
	// version's content. Defaults to `$STRATA_HOME`, else
	// `/var/lib/strata`.
	StoreDir string `mapstructure:"store_dir" required:"false"`
	// The image's name, such as `base-os`.
	Name string `mapstructure:"name" required:"true"`
	// The channel whose version to take, such as `production`.
	Channel string `mapstructure:"channel" required:"false"`
	// The version to take, such as `1.0.3`.
	Version string `mapstructure:"version" required:"false"`
	// The newest version (by registration) with this tag that is not
	// revoked.
	Tag string `mapstructure:"tag" required:"false"`
	// Registries (`host:port`) reached over plain http when the version's
	// layers are pulled. A version whose image is not in this host's
	// layer store but was pushed to a registry (strata-catalog's `push`,
	// `strata push`) is pulled from the reference the catalog recorded,
	// every blob verified, before the data source answers; credentials
	// come from the Docker config and its credential helpers.
	InsecureRegistries []string `mapstructure:"insecure_registries" required:"false"`
	// The Debian architecture the image must be of, such as `arm64`: a
	// version of another architecture is refused, naming both. Defaults to
	// the build host's (`dpkg --print-architecture`); set it to the
	// strata-chroot build's `architecture` when that is another.
	Architecture string `mapstructure:"architecture" required:"false"`
}

// DatasourceOutput is what the data source answers.
type DatasourceOutput struct {
	// The image ID (`sha256:...`), what strata-chroot's `parent` takes.
	ImageID string `mapstructure:"image_id"`
	// The version.
	Version string `mapstructure:"version"`
	// The image's name.
	Name string `mapstructure:"name"`
	// The channel asked for, or "" when a version or tag was.
	Channel string `mapstructure:"channel"`
	// When the version was registered (RFC 3339, UTC).
	Created string `mapstructure:"created"`
	// The image's layers, bottom first, by diffID.
	Layers []string `mapstructure:"layers"`
	// The version's labels.
	Labels map[string]string `mapstructure:"labels"`
	// The version's files by format: `artifacts["tar.zst"]` is the path.
	Artifacts map[string]string `mapstructure:"artifacts"`
	// Their sha256 (hex) by format.
	ArtifactSHA256 map[string]string `mapstructure:"artifact_sha256"`
	// The image's Debian architecture ("" for a version registered before
	// the catalog recorded architectures).
	Architecture string `mapstructure:"architecture"`
	// The parent image ID, "" for a base.
	ParentImageID string `mapstructure:"parent_image_id"`
	// True when the version sits on a replaced base: its parent, or any
	// ancestor further up, is no longer held by any channel of its own image
	// (as `strata lineage --out-of-date` lists). Such a version should be
	// rebuilt on what the ancestor's channels hold now.
	OutOfDate bool `mapstructure:"out_of_date"`
	// The nearest such ancestor, as `name@version`; "" when `out_of_date`
	// is false.
	StaleAncestor string `mapstructure:"stale_ancestor"`
}

func (c *Config) prepare(raws ...interface{}) error {
	if err := config.Decode(c, nil, raws...); err != nil {
		return err
	}
	var errs *packersdk.MultiError
	add := func(format string, a ...interface{}) {
		errs = packersdk.MultiErrorAppend(errs, fmt.Errorf(format, a...))
	}
	if c.Name == "" {
		add("name: required, such as \"base-os\"")
	} else if err := catalogdb.ValidName("image", c.Name); err != nil {
		add("name: %v", err)
	}
	set := 0
	for _, s := range []string{c.Channel, c.Version, c.Tag} {
		if s != "" {
			set++
		}
	}
	if set != 1 {
		add("set exactly one of channel, version or tag (%d are set)", set)
	}
	if c.Channel != "" {
		if err := catalogdb.ValidName("channel", c.Channel); err != nil {
			add("channel: %v", err)
		}
	}
	if c.Architecture == "" {
		if a, err := debarch.Host(); err == nil {
			c.Architecture = a
		}
	} else if _, ok := debarch.Lookup(c.Architecture); !ok {
		add("architecture: %q is not a Debian architecture; use one of %s", c.Architecture, strings.Join(debarch.Names(), ", "))
	}
	if c.Catalog != "" {
		if catalogdb.CheckURL(c.Catalog) != nil {
			add("catalog: %q is not a catalog URL; use sqlite:///path/catalog.db or postgres://user@host/db", c.Catalog)
		}
	}
	if errs != nil && len(errs.Errors) > 0 {
		return errs
	}
	return nil
}
