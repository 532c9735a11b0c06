package registry

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/strata-build/packer-plugin-strata/layer"
)

// Pulled is what a pull stored.
type Pulled struct {
	Image *layer.Image
	// Digest is the manifest's digest.
	Digest string
	// Layers counts the layers fetched (the others were in the store).
	Layers int
	// Release lets the image and its layers go (see layer.Store.Hold).
	Release func()
}

// Expect is what the puller knows of the image before the pull.
type Expect struct {
	// ImageID, when set, is the image ID the reference must hold (the
	// catalog's): an image with another config is refused before anything
	// is fetched or stored.
	ImageID string
	// Parent is the image's parent image ID when known, recorded with it.
	Parent string
}

// Pull fetches the image ref names into the store: its manifest, its
// config (checked against the manifest's digest of it) and every layer the
// store lacks, several at once, each blob checked against its digest and
// its DiffID while it is unpacked (layer.Store.ImportLayer). A blob that
// does not match is refused and nothing of it stays; a pull that fails
// midway leaves only the whole layers it finished, never an image without
// its layers. want says what the image must be.
func Pull(ctx context.Context, store *layer.Store, ref string, want Expect, opt Options) (*Pulled, error) {
	r, err := opt.ParseReference(ref)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*Pulled, error) { return nil, fmt.Errorf("pull %s: %w", ref, err) }
	// One authenticated transport (one ping, kept-alive connections) for
	// the manifest, the config and every blob.
	rt, err := opt.authTransport(ctx, r.Context().Registry, []string{r.Context().Scope(transport.PullScope)})
	if err != nil {
		return fail(err)
	}
	ro := opt.remoteOptions(ctx, rt)
	img, err := remote.Image(r, ro...)
	if err != nil {
		return fail(err)
	}
	m, err := img.Manifest()
	if err != nil {
		return fail(err)
	}
	d, err := img.Digest()
	if err != nil {
		return fail(err)
	}
	if dr, ok := r.(name.Digest); ok && dr.DigestStr() != d.String() {
		return fail(fmt.Errorf("the registry answered manifest %s", d))
	}
	cfg, err := img.RawConfigFile()
	if err != nil {
		return fail(err)
	}
	if sum := sha256.Sum256(cfg); "sha256:"+hex.EncodeToString(sum[:]) != m.Config.Digest.String() {
		return fail(fmt.Errorf("config %s: %w", m.Config.Digest, layer.ErrDigestMismatch))
	}
	if id := layer.ImageID(cfg); want.ImageID != "" && id != want.ImageID {
		return fail(fmt.Errorf("it holds image %s, not the expected %s", id, want.ImageID))
	}
	cf, err := v1.ParseConfigFile(strings.NewReader(string(cfg)))
	if err != nil {
		return fail(err)
	}
	if len(cf.RootFS.DiffIDs) != len(m.Layers) {
		return fail(fmt.Errorf("the manifest has %d layers, its config %d DiffIDs", len(m.Layers), len(cf.RootFS.DiffIDs)))
	}
	// Every layer's media type and size are checked before any fetch
	// starts, so a refusal leaves nothing running and nothing held.
	blobs := make([]layer.ImportBlob, len(m.Layers))
	for i, desc := range m.Layers {
		b := layer.ImportBlob{DiffID: cf.RootFS.DiffIDs[i].String(), Digest: desc.Digest.String(), Size: desc.Size}
		c, ok := layer.CompressionOf(string(desc.MediaType))
		if !ok {
			return fail(fmt.Errorf("layer %s has media type %s: only gzip and zstd layers can be pulled", desc.Digest, desc.MediaType))
		}
		if desc.Size <= 0 {
			return fail(fmt.Errorf("layer %s has size %d in the manifest: a manifest must give each blob's size", desc.Digest, desc.Size))
		}
		b.Compression = c
		blobs[i] = b
	}
	// The first failure stops the other fetches.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu       sync.Mutex
		releases []func()
		fetched  int
		firstErr error
		wg       sync.WaitGroup
		sem      = make(chan struct{}, opt.jobs())
	)
	releaseAll := func() {
		for _, r := range releases {
			r()
		}
	}
	// Every layer is held from when the pull finds it (a layer the store
	// has, not fetched) or stores it until the image holds them, so a gc
	// running meanwhile leaves them.
	for i, desc := range m.Layers {
		b := blobs[i]
		_, release, err := store.HoldLayer(b.DiffID)
		mu.Lock()
		if err == nil {
			releases = append(releases, release)
		} else if !errors.Is(err, layer.ErrNotFound) && firstErr == nil {
			firstErr = fmt.Errorf("layer %s: %w", layer.ShortDigest(b.DiffID), err)
			cancel()
		}
		stop := firstErr != nil
		mu.Unlock()
		if stop {
			break
		}
		if err == nil {
			continue
		}
		blobRef := r.Context().Digest(desc.Digest.String())
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			open := func(ctx context.Context) (io.ReadCloser, error) {
				l, err := remote.Layer(blobRef, opt.remoteOptions(ctx, rt)...)
				if err != nil {
					return nil, err
				}
				return l.Compressed()
			}
			_, got, release, err := store.ImportLayer(ctx, b, open)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = fmt.Errorf("layer %s: %w", layer.ShortDigest(b.DiffID), err)
					cancel()
				}
				return
			}
			releases = append(releases, release)
			if got {
				fetched++
			}
		}()
	}
	wg.Wait()
	defer releaseAll()
	if firstErr != nil {
		return fail(firstErr)
	}
	stored, _, release, err := store.ImportImage(cfg, want.Parent)
	if err != nil {
		return fail(err)
	}
	return &Pulled{Image: stored, Digest: d.String(), Layers: fetched, Release: release}, nil
}
