package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/spf13/cobra"

	"github.com/strata-build/packer-plugin-strata/catalog"
	"github.com/strata-build/packer-plugin-strata/internal/bytesize"
	"github.com/strata-build/packer-plugin-strata/layer"
	"github.com/strata-build/packer-plugin-strata/registry"
)

// registryFlags are the flags of the commands that reach a registry.
type registryFlags struct {
	insecure    []string
	compression string
}

func (f *registryFlags) add(cmd *cobra.Command) {
	var def []string
	if v := os.Getenv("STRATA_INSECURE_REGISTRIES"); v != "" {
		def = strings.Split(v, ",")
	}
	cmd.Flags().StringSliceVar(&f.insecure, "insecure-registry", def, "a registry (host:port) reached over plain http, such as a loopback test registry (repeatable; default $STRATA_INSECURE_REGISTRIES, comma-separated)")
}

func (f *registryFlags) options() registry.Options {
	return registry.Options{Insecure: f.insecure, Compression: f.compression}
}

func pushCmd(g *globals) *cobra.Command {
	var rf registryFlags
	cmd := &cobra.Command{
		Use:   "push NAME@VERSION REPO[:TAG]",
		Short: "Push a version from this host's layer store to an OCI registry (only the blobs it lacks) and record the reference",
		Args:  args(2, "NAME@VERSION and a registry repository"),
		RunE: g.onVersionArgs(func(ctx context.Context, c *catalog.Catalog, v *catalog.Version, a []string) error {
			ref := a[1]
			if r, err := name.ParseReference(ref); err != nil {
				return usageError{fmt.Errorf("%q is not a registry repository (host/path[:tag]): %w", ref, err)}
			} else if _, isDigest := r.(name.Digest); isDigest {
				return usageError{fmt.Errorf("%q: push to a tag, not a digest", ref)}
			} else if !strings.Contains(ref[strings.LastIndex(ref, "/")+1:], ":") {
				ref += ":" + v.Version
			}
			store, err := g.layerStore()
			if err != nil {
				return err
			}
			if rf.compression != layer.Gzip && rf.compression != layer.Zstd {
				return usageError{fmt.Errorf("--compression %q: use gzip or zstd", rf.compression)}
			}
			p, err := c.Push(ctx, store, v, []string{ref}, registry.PushOptions{Options: rf.options()})
			if err != nil {
				return err
			}
			return g.emit(p, func(w *tabwriter.Writer) {
				printEsc(w, "pushed %s to %s (%s): %d blob(s), %s uploaded\n", v.Ref(), ref, p.Digest, p.Blobs, bytesize.Human(p.Bytes))
			})
		}),
	}
	rf.add(cmd)
	cmd.Flags().StringVar(&rf.compression, "compression", layer.Gzip, "layer blob compression: gzip or zstd")
	return cmd
}

func pullCmd(g *globals) *cobra.Command {
	var rf registryFlags
	cmd := &cobra.Command{
		Use:   "pull NAME@VERSION | REF",
		Short: "Fetch an image into this host's layer store, every blob verified: a version from the registry reference the catalog recorded, or a registry reference",
		Args:  args(1, "NAME@VERSION or a registry reference"),
		RunE: func(cmd *cobra.Command, a []string) error {
			ctx := cmd.Context()
			store, err := g.layerStore()
			if err != nil {
				return err
			}
			show := func(what string, p *registry.Pulled) error {
				defer p.Release()
				return g.emit(struct {
					Image  string `json:"image_id"`
					Digest string `json:"digest"`
					Layers int    `json:"layers_fetched"`
				}{p.Image.ID, p.Digest, p.Layers}, func(w *tabwriter.Writer) {
					printEsc(w, "pulled %s: image %s (%s), %d of %d layer(s) fetched\n", what, layer.ShortDigest(p.Image.ID), p.Digest, p.Layers, len(p.Image.Layers))
				})
			}
			if strings.Contains(a[0], "/") {
				p, err := registry.Pull(ctx, store, a[0], registry.Expect{}, rf.options())
				if err != nil {
					return err
				}
				return show(a[0], p)
			}
			return g.onVersionArgs(func(ctx context.Context, c *catalog.Catalog, v *catalog.Version, _ []string) error {
				p, err := c.Pull(ctx, store, v, rf.options())
				if err != nil {
					return err
				}
				return show(v.Ref(), p)
			})(cmd, a)
		},
	}
	rf.add(cmd)
	return cmd
}

// onVersionArgs is onVersion with the version read and the arguments passed.
func (g *globals) onVersionArgs(run func(ctx context.Context, c *catalog.Catalog, v *catalog.Version, a []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, a []string) error {
		return g.onVersion(func(ctx context.Context, c *catalog.Catalog, name, version string) error {
			v, err := c.Get(ctx, name, version)
			if err != nil {
				return err
			}
			return run(ctx, c, v, a)
		})(cmd, a)
	}
}

// retag points CHANNEL's tag in every repository the version was pushed to
// at the version's manifest, and records it.
func retag(ctx context.Context, c *catalog.Catalog, image, version, channel string, opt registry.Options) ([]string, error) {
	v, err := c.Get(ctx, image, version)
	if err != nil {
		return nil, err
	}
	refs := v.RegistryRefs()
	if len(refs) == 0 {
		return nil, fmt.Errorf("--retag: %s was never pushed to a registry (strata push %s REPO)", v.Ref(), v.Ref())
	}
	var moved []string
	var recs []catalog.RegistryRef
	seen := map[string]bool{}
	for _, r := range refs {
		ref, err := name.ParseReference(r.Ref)
		if err != nil {
			return moved, err
		}
		repo := ref.Context().String()
		if seen[repo] {
			continue
		}
		seen[repo] = true
		tag := ref.Context().Tag(channel).String()
		if err := registry.Tag(ctx, tag, r.Digest, opt); err != nil {
			return moved, err
		}
		moved = append(moved, tag)
		recs = append(recs, catalog.RegistryRef{Ref: tag, Digest: r.Digest})
	}
	return moved, c.AddRegistryRefs(ctx, image, version, recs)
}
