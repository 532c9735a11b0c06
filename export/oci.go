package export

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/strata-build/packer-plugin-strata/internal/durable"
	"github.com/strata-build/packer-plugin-strata/internal/treesize"
	"github.com/strata-build/packer-plugin-strata/layer"
)

// OCI annotations (image-spec annotations.md).
const (
	annotationVersion    = "org.opencontainers.image.version"
	annotationCreated    = "org.opencontainers.image.created"
	annotationBaseName   = "org.opencontainers.image.base.name"
	annotationBaseDigest = "org.opencontainers.image.base.digest"
	annotationRefName    = "org.opencontainers.image.ref.name"
)

// OCIOptions tune the oci format.
type OCIOptions struct {
	Compression string // layer.Gzip or layer.Zstd
	Version     string
	// BaseName names the parent for the base.name annotation.
	BaseName string
}

// ociImage is a stored image as go-containerregistry sees it: its config
// byte for byte (so the config digest is the image ID), and one compressed
// blob per layer, made once and kept in the store.
type ociImage struct {
	img      *layer.Image
	blobs    []*layer.Blob
	manifest []byte
}

func newOCIImage(ctx context.Context, store *layer.Store, img *layer.Image, opt OCIOptions, annotations map[string]string) (*ociImage, error) {
	o := &ociImage{img: img}
	mediaType := types.OCILayer
	if opt.Compression == layer.Zstd {
		mediaType = types.OCILayerZStd
	}
	cfgDigest, err := v1.NewHash(img.ID)
	if err != nil {
		return nil, err
	}
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		Config:        v1.Descriptor{MediaType: types.OCIConfigJSON, Size: int64(len(img.Config)), Digest: cfgDigest},
		Annotations:   annotations,
	}
	for _, ref := range img.Layers {
		l, err := store.Layer(ref.DiffID)
		if err != nil {
			return nil, err
		}
		b, err := store.Blob(ctx, l, opt.Compression)
		if err != nil {
			return nil, err
		}
		d, err := v1.NewHash(b.Digest)
		if err != nil {
			return nil, err
		}
		o.blobs = append(o.blobs, b)
		m.Layers = append(m.Layers, v1.Descriptor{MediaType: mediaType, Size: b.Size, Digest: d})
	}
	if o.manifest, err = json.Marshal(m); err != nil {
		return nil, err
	}
	return o, nil
}

func (o *ociImage) RawConfigFile() ([]byte, error)      { return o.img.Config, nil }
func (o *ociImage) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }
func (o *ociImage) RawManifest() ([]byte, error)        { return o.manifest, nil }

// digest is the manifest's digest, "sha256:<hex>".
func (o *ociImage) digest() string {
	sum := sha256.Sum256(o.manifest)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func (o *ociImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	for i, b := range o.blobs {
		if b.Digest == h.String() {
			mt := types.OCILayer
			if b.Compression == layer.Zstd {
				mt = types.OCILayerZStd
			}
			return &ociBlob{b: b, mediaType: mt, diffID: o.img.Layers[i].DiffID}, nil
		}
	}
	return nil, fmt.Errorf("the image has no layer blob %s", h)
}

// ociBlob is one cached layer blob.
type ociBlob struct {
	b         *layer.Blob
	mediaType types.MediaType
	diffID    string
}

func (l *ociBlob) Digest() (v1.Hash, error)            { return v1.NewHash(l.b.Digest) }
func (l *ociBlob) DiffID() (v1.Hash, error)            { return v1.NewHash(l.diffID) }
func (l *ociBlob) Compressed() (io.ReadCloser, error)  { return os.Open(l.b.Path) }
func (l *ociBlob) Size() (int64, error)                { return l.b.Size, nil }
func (l *ociBlob) MediaType() (types.MediaType, error) { return l.mediaType, nil }

// ManifestDigest is the digest an image's OCI manifest has with the given
// compression and no annotations: what a child's base.digest names.
func ManifestDigest(ctx context.Context, store *layer.Store, img *layer.Image, compression string) (string, error) {
	o, err := newOCIImage(ctx, store, img, OCIOptions{Compression: compression}, nil)
	if err != nil {
		return "", err
	}
	return o.digest(), nil
}

// Image is a stored image as an OCI image, its layer blobs the store's (made
// once, kept): what a registry push uploads. Its manifest has no
// annotations, so its digest is ManifestDigest's.
func Image(ctx context.Context, store *layer.Store, img *layer.Image, compression string) (v1.Image, error) {
	o, err := newOCIImage(ctx, store, img, OCIOptions{Compression: compression}, nil)
	if err != nil {
		return nil, err
	}
	return partial.CompressedToImage(o)
}

// writeOCI writes the image as an OCI image layout directory at final:
// blobs/, index.json, oci-layout. The Output's SHA256 is the manifest's.
func writeOCI(ctx context.Context, src Source, final string, opt OCIOptions, tracker Tracker) (Output, error) {
	if src.Store == nil || src.Image == nil {
		return Output{}, fmt.Errorf("the oci format needs the image's layers (a strata-chroot build or strata export)")
	}
	cfg, err := src.Image.ConfigFile()
	if err != nil {
		return Output{}, err
	}
	annotations := map[string]string{annotationCreated: cfg.Created.UTC().Format("2006-01-02T15:04:05Z")}
	if opt.Version != "" {
		annotations[annotationVersion] = opt.Version
	}
	if src.Image.Parent != "" {
		if parent, err := src.Store.Image(src.Image.Parent); err == nil {
			d, err := ManifestDigest(ctx, src.Store, parent, opt.Compression)
			if err != nil {
				return Output{}, err
			}
			annotations[annotationBaseDigest] = d
		}
		if opt.BaseName != "" {
			annotations[annotationBaseName] = opt.BaseName
		}
	}
	o, err := newOCIImage(ctx, src.Store, src.Image, opt, annotations)
	if err != nil {
		return Output{}, err
	}
	img, err := partial.CompressedToImage(o)
	if err != nil {
		return Output{}, err
	}
	tmp := final + ".tmp"
	os.RemoveAll(tmp)
	if tracker != nil {
		tracker.AddTemp(tmp)
		defer tracker.RemoveTemp(tmp)
	}
	p, err := layout.Write(tmp, empty.Index)
	if err != nil {
		os.RemoveAll(tmp)
		return Output{}, err
	}
	// The index names the image (its version, else "latest"), so tools can
	// pick it: umoci unpack --image DIR:latest, skopeo oci:DIR:latest.
	ref := opt.Version
	if ref == "" {
		ref = "latest"
	}
	indexAnnotations := map[string]string{annotationRefName: ref}
	for k, v := range annotations {
		indexAnnotations[k] = v
	}
	// The platform, so that tools choosing by architecture find the image.
	platform := v1.Platform{OS: cfg.OS, Architecture: cfg.Architecture, Variant: cfg.Variant}
	if err := p.AppendImage(img, layout.WithAnnotations(indexAnnotations), layout.WithPlatform(platform)); err != nil {
		os.RemoveAll(tmp)
		return Output{}, err
	}
	if err := ctx.Err(); err != nil {
		os.RemoveAll(tmp)
		return Output{}, err
	}
	if err := durable.Tree(tmp); err != nil {
		os.RemoveAll(tmp)
		return Output{}, err
	}
	if err := os.Rename(tmp, final); err != nil {
		os.RemoveAll(tmp)
		return Output{}, err
	}
	t, _ := treesize.Measure(final)
	return Output{Format: "oci", Path: final, Size: t.Apparent, SHA256: o.digest()[len("sha256:"):]}, nil
}

// VerifyOCI checks an OCI layout output: its image's manifest has the
// recorded digest, and every blob matches its digest and diffID.
func VerifyOCI(dir, manifestHex string) error {
	p, err := layout.FromPath(dir)
	if err != nil {
		return err
	}
	h, err := v1.NewHash("sha256:" + manifestHex)
	if err != nil {
		return err
	}
	img, err := p.Image(h)
	if err != nil {
		return fmt.Errorf("%s has no image with manifest sha256:%s: %w", dir, manifestHex, err)
	}
	raw, err := img.RawManifest()
	if err != nil {
		return err
	}
	sum := sha256.Sum256(raw)
	if !bytes.Equal([]byte(hex.EncodeToString(sum[:])), []byte(manifestHex)) {
		return fmt.Errorf("%s: the manifest does not have its digest", dir)
	}
	// validate reads every layer as gzip: it checks the manifest and the
	// config here, and verifyLayer each layer in its own compression.
	if err := validate.Image(img, validate.Fast); err != nil {
		return err
	}
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	for i, l := range layers {
		if err := verifyLayer(l); err != nil {
			return fmt.Errorf("%s: layer %d: %w", dir, i, err)
		}
	}
	return nil
}

// verifyLayer checks a layer blob's bytes against its digest and size, and
// the bytes it decompresses to (gzip or zstd, as its media type says)
// against its DiffID.
func verifyLayer(l v1.Layer) error {
	digest, err := l.Digest()
	if err != nil {
		return err
	}
	diffID, err := l.DiffID()
	if err != nil {
		return err
	}
	size, err := l.Size()
	if err != nil {
		return err
	}
	mt, err := l.MediaType()
	if err != nil {
		return err
	}
	rc, err := l.Compressed()
	if err != nil {
		return err
	}
	defer rc.Close()
	blobHash := sha256.New()
	counted := &countingReader{r: io.TeeReader(rc, blobHash)}
	var unpacked io.Reader
	switch c, _ := layer.CompressionOf(string(mt)); c {
	case layer.Zstd:
		zr, err := zstd.NewReader(counted)
		if err != nil {
			return err
		}
		defer zr.Close()
		unpacked = zr
	default:
		gr, err := gzip.NewReader(counted)
		if err != nil {
			return err
		}
		unpacked = gr
	}
	diffHash := sha256.New()
	if _, err := io.Copy(diffHash, unpacked); err != nil {
		return fmt.Errorf("decompressing %s: %w", digest, err)
	}
	if _, err := io.Copy(io.Discard, counted); err != nil {
		return err
	}
	if got := "sha256:" + hex.EncodeToString(blobHash.Sum(nil)); got != digest.String() || counted.n != size {
		return fmt.Errorf("blob %s reads back as %s, %d bytes (want %d)", digest, got, counted.n, size)
	}
	if got := "sha256:" + hex.EncodeToString(diffHash.Sum(nil)); got != diffID.String() {
		return fmt.Errorf("blob %s decompresses to %s, not its DiffID %s", digest, got, diffID)
	}
	return nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += int64(n)
	return n, err
}
