// Package catalog is the strata-catalog post-processor: it registers the
// artifact of the build before it as a version in the rollback catalog,
// with its lineage, files and packages, and points channels at it.
package catalog

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2/hcldec"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
	registryimage "github.com/hashicorp/packer-plugin-sdk/packer/registry/image"

	catalogdb "github.com/strata-build/packer-plugin-strata/catalog"
	_ "github.com/strata-build/packer-plugin-strata/catalog/postgres"
	_ "github.com/strata-build/packer-plugin-strata/catalog/sqlite"
	"github.com/strata-build/packer-plugin-strata/export"
	"github.com/strata-build/packer-plugin-strata/internal/bytesize"
	"github.com/strata-build/packer-plugin-strata/internal/storeroot"
	"github.com/strata-build/packer-plugin-strata/layer"
	"github.com/strata-build/packer-plugin-strata/registry"
)

// BuilderID identifies this post-processor's artifacts.
const BuilderID = "strata.catalog"

// chrootBuilderID is strata-chroot's artifact builder ID (the builder's
// package is a component this one does not import).
const chrootBuilderID = "strata.chroot"

// The keys of strata-chroot's artifact state.
const (
	stateManifest = "strata.manifest"
	stateBuild    = "strata.build"
)

// PostProcessor is strata-catalog.
type PostProcessor struct {
	config Config
}

func (p *PostProcessor) ConfigSpec() hcldec.ObjectSpec { return p.config.FlatMapstructure().HCL2Spec() }

func (p *PostProcessor) Configure(raws ...interface{}) error { return p.config.Prepare(raws...) }

// PostProcess registers the artifact. The input artifact is kept by
// default (the catalog points at its files); keep_input_artifact = false
// is honoured, and the version then keeps only its layers.
func (p *PostProcessor) PostProcess(ctx context.Context, ui packersdk.Ui, in packersdk.Artifact) (packersdk.Artifact, bool, bool, error) {
	c := &p.config
	start := time.Now()
	v := &catalogdb.Version{
		Image:       c.ImageName,
		Version:     c.Version,
		Tags:        c.Tags,
		Labels:      map[string]string{},
		Description: c.Description,
	}
	for k, l := range c.Labels {
		v.Labels[k] = l
	}
	var storeDir string
	switch in.BuilderId() {
	case chrootBuilderID:
		build := plainMap(in.State(stateBuild))
		storeDir = str(build["store_dir"])
		v.Build.BuildName = str(build["build_name"])
		v.Build.PackerRunUUID = str(build["packer_run_uuid"])
		v.Build.TemplateHash = str(build["template_hash"])
		dir := str(in.State("output_dir"))
		m, err := manifestOf(in, dir)
		if err != nil {
			return nil, false, false, err
		}
		ui.Say(fmt.Sprintf("Checking %d output(s) in %s against their sha256 ...", len(m.Outputs), dir))
		if err := catalogdb.FromOutput(ctx, v, dir, m); err != nil {
			return nil, false, false, fmt.Errorf("strata-catalog: %w", err)
		}
		if err := catalogdb.WriteStatements(dir, c.ImageName, v); err != nil {
			return nil, false, false, fmt.Errorf("strata-catalog: %w", err)
		}
	default:
		if err := fromRegistryMetadata(ctx, v, in); err != nil {
			return nil, false, false, err
		}
		ui.Message(fmt.Sprintf("%s is not strata-chroot's: recorded from its registry metadata as %s", in.BuilderId(), v.ImageID))
	}
	if v.Build.PackerRunUUID == "" {
		v.Build.PackerRunUUID = os.Getenv("PACKER_RUN_UUID")
	}
	if v.Build.BuildName == "" {
		v.Build.BuildName = c.PackerBuildName
	}
	reason := c.Reason
	if reason == "" {
		reason = "registered by packer build " + c.PackerBuildName
	}

	url := c.Catalog
	if url == "" {
		url = catalogdb.URLFor(storeDir)
	}
	cat, err := catalogdb.Open(url)
	if err != nil {
		return nil, false, false, fmt.Errorf("strata-catalog: catalog: %w", err)
	}
	defer cat.Close()
	if cat.Created {
		ui.Message(fmt.Sprintf("Created a new catalog at %s", catalogdb.RedactURL(url)))
	}
	if storeDir != "" {
		cat.ContentExists = catalogdb.ContentInStore(storeroot.Layout{Root: storeDir}.Layers())
	}
	if v.ParentID != "" {
		if _, external, err := cat.ResolveParent(ctx, v.ParentID); err == nil && external {
			ui.Message(fmt.Sprintf("No version in the catalog has the parent %s: recorded as a base from outside", v.ParentID))
		}
	}
	// A version with failed evidence (strata-test's on_failure =
	// "register") is registered for inspection only: no channel moves.
	failed := failedKinds(v.Evidence)
	channels := c.Channels
	if len(failed) > 0 {
		channels = nil
	}
	scheme := catalogdb.VersionScheme(c.VersionScheme)
	out, err := cat.Register(ctx, v, catalogdb.RegisterOptions{
		Scheme:         scheme,
		AllowDuplicate: c.AllowDuplicate,
		Channels:       channels,
		Move:           catalogdb.MoveOptions{Actor: c.Actor, Reason: reason},
	})
	if errors.Is(err, catalogdb.ErrPolicy) {
		return nil, false, false, fmt.Errorf("strata-catalog: nothing registered: the channels option asks for a move a channel policy refuses (see strata policy show %s): %w", c.ImageName, err)
	}
	if err != nil {
		return nil, false, false, fmt.Errorf("strata-catalog: registering %s: %w", c.ImageName, err)
	}
	ui.Say(fmt.Sprintf("Registered %s (%s): %d file(s), %d package(s), %d layer(s)%s in %s",
		out.Ref(), out.ImageID, len(out.Artifacts), len(out.Packages), len(out.Layers), parentNote(out), time.Since(start).Round(time.Millisecond)))
	for _, e := range out.Evidence {
		ui.Message(fmt.Sprintf("Evidence %s: %s (%d passed, %d failed, %d skipped)", e.Kind, passFail(e.Passed), e.Counts.Passed, e.Counts.Failed, e.Counts.Skipped))
	}
	if len(failed) > 0 {
		return nil, false, false, fmt.Errorf("strata-catalog: registered %s with failed evidence (%s) for inspection only: no channel was moved, and no channel whose policy requires that evidence will take it",
			out.Ref(), strings.Join(failed, ", "))
	}
	for _, ch := range channels {
		ui.Message(fmt.Sprintf("%s -> %s", ch, out.Ref()))
	}
	if err := c.push(ctx, ui, cat, storeDir, out, channels); err != nil {
		return nil, false, false, err
	}
	gd := map[string]interface{}{}
	for k, x := range plainMap(in.State("generated_data")) {
		gd[k] = x
	}
	return &Artifact{Version: out, URL: url, generatedData: gd}, true, false, nil
}

// failedKinds lists the kinds of evidence that failed.
func failedKinds(ev []catalogdb.Evidence) []string {
	var out []string
	for _, e := range ev {
		if !e.Passed && !slices.Contains(out, e.Kind) {
			out = append(out, e.Kind)
		}
	}
	return out
}

func passFail(passed bool) string {
	if passed {
		return "passed"
	}
	return "FAILED"
}

func parentNote(v *catalogdb.Version) string {
	if v.ParentID == "" {
		return ""
	}
	return ", parent " + v.ParentID
}

// manifestOf is strata-chroot's artifact.json as its artifact hands it
// over (plain maps after the RPC trip), read leniently.
func manifestOf(in packersdk.Artifact, dir string) (*export.Manifest, error) {
	if dir == "" {
		return nil, fmt.Errorf("strata-catalog: the strata-chroot artifact names no output_dir")
	}
	raw := in.State(stateManifest)
	if raw == nil {
		// An artifact from before the manifest travelled in state.
		return export.ReadManifest(dir)
	}
	b, err := jsonOf(raw)
	if err != nil {
		return nil, fmt.Errorf("strata-catalog: the artifact's %s: %w", stateManifest, err)
	}
	return export.ParseManifest(dir, b)
}

// fromRegistryMetadata fills v from Packer's registry image metadata
// (par.artifact.metadata), which builders of any kind publish: the image ID
// (used as it is when it is a sha256 digest, else a digest of provider,
// region, ID and the files' sha256), the provider's labels, and the
// artifact's files.
func fromRegistryMetadata(ctx context.Context, v *catalogdb.Version, in packersdk.Artifact) error {
	imgs, err := registryImages(in.State(registryimage.ArtifactStateURI))
	if err != nil || len(imgs) == 0 {
		return fmt.Errorf("strata-catalog registers the artifacts of strata-chroot (builder ID %s), or of a builder that publishes Packer's registry image metadata (%s); %s published none",
			chrootBuilderID, registryimage.ArtifactStateURI, in.BuilderId())
	}
	img := imgs[0]
	if catalogdb.ValidDigest("parent", img.SourceImageID) == nil {
		v.ParentID = img.SourceImageID
	}
	v.Labels["external.builder_id"] = in.BuilderId()
	v.Labels["external.provider"] = img.ProviderName
	v.Labels["external.image_id"] = img.ImageID
	if img.ProviderRegion != "" {
		v.Labels["external.region"] = img.ProviderRegion
	}
	if img.SourceImageID != "" {
		v.Labels["external.source_image_id"] = img.SourceImageID
	}
	for k, l := range img.Labels {
		if _, set := v.Labels[k]; !set && labelKeyRe.MatchString(k) {
			v.Labels[k] = l
		}
	}
	for _, f := range in.Files() {
		fi, err := os.Stat(f)
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		sum, size, err := export.FileSHA256(f)
		if err != nil {
			return fmt.Errorf("strata-catalog: %s: %w", f, err)
		}
		v.Artifacts = append(v.Artifacts, catalogdb.Artifact{Format: formatOf(f), Path: f, Size: size, SHA256: sum})
	}
	if catalogdb.ValidDigest("image ID", img.ImageID) == nil {
		v.ImageID = img.ImageID
	} else {
		// Content-addressed like strata's own: the same image with other
		// files is other content.
		h := sha256.New()
		fmt.Fprintf(h, "%s\x00%s\x00%s", img.ProviderName, img.ProviderRegion, img.ImageID)
		for _, a := range v.Artifacts {
			fmt.Fprintf(h, "\x00%s", a.SHA256)
		}
		v.ImageID = "sha256:" + hex.EncodeToString(h.Sum(nil))
	}
	return ctx.Err()
}

// formatOf names a foreign artifact file's format by its extension.
func formatOf(path string) string {
	base := path[strings.LastIndex(path, "/")+1:]
	if i := strings.Index(base, "."); i > 0 {
		return base[i+1:]
	}
	return "file"
}

// push uploads the registered version to the push repositories and
// records the references on it.
func (c *Config) push(ctx context.Context, ui packersdk.Ui, cat *catalogdb.Catalog, storeDir string, v *catalogdb.Version, channels []string) error {
	if len(c.Push) == 0 {
		return nil
	}
	if storeDir == "" {
		return fmt.Errorf("strata-catalog: push: %s was not built by strata-chroot: only images in a layer store can be pushed", v.Ref())
	}
	store, err := layer.Open(storeroot.Layout{Root: storeDir}.Layers())
	if err != nil {
		return fmt.Errorf("strata-catalog: push: %w", err)
	}
	opt := registry.PushOptions{Options: registry.Options{Insecure: c.InsecureRegistries, Compression: c.PushCompression}}
	for _, repo := range c.Push {
		refs, err := catalogdb.PushRefs(repo, v.Version, channels)
		if err != nil {
			return fmt.Errorf("strata-catalog: %w", err)
		}
		start := time.Now()
		ui.Say(fmt.Sprintf("Pushing %s to %s ...", v.Ref(), strings.Join(refs, ", ")))
		p, err := cat.Push(ctx, store, v, refs, opt)
		if err != nil {
			return fmt.Errorf("strata-catalog: registered %s, but pushing it failed (rerun strata push %s %s): %w", v.Ref(), v.Ref(), repo, err)
		}
		ui.Message(fmt.Sprintf("Pushed %s (%d blob(s), %s uploaded) in %s", p.Digest, p.Blobs, bytesize.Human(p.Bytes), time.Since(start).Round(time.Millisecond)))
	}
	return nil
}
