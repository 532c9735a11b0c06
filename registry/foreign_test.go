package registry

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"testing"

	"github.com/google/go-containerregistry/pkg/compression"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/zstd"

	"github.com/strata-build/packer-plugin-strata/layer"
)

// foreignTar is a layer tar as another tool writes it, not as strata's
// treetar would: no "./" prefix, entries not ordered by name, a PAX header
// strata does not write.
func foreignTar(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(h *tar.Header, body string) {
		h.Size = int64(len(body))
		must(t, tw.WriteHeader(h))
		_, err := tw.Write([]byte(body))
		must(t, err)
	}
	add(&tar.Header{Name: "srv/", Typeflag: tar.TypeDir, Mode: 0o755}, "")
	add(&tar.Header{Name: "srv/zeta", Typeflag: tar.TypeReg, Mode: 0o644, Uname: "someone", Format: tar.FormatPAX,
		PAXRecords: map[string]string{"comment": "made elsewhere"}}, "zeta\n")
	add(&tar.Header{Name: "srv/alpha", Typeflag: tar.TypeReg, Mode: 0o600}, "alpha\n")
	add(&tar.Header{Name: "etc/", Typeflag: tar.TypeDir, Mode: 0o755}, "")
	must(t, tw.Close())
	return buf.Bytes()
}

// foreignImage is a one-layer OCI image made by go-containerregistry (not
// strata) with the given layer compression.
func foreignImage(t *testing.T, c compression.Compression) v1.Image {
	t.Helper()
	data := foreignTar(t)
	mt := types.OCILayer
	if c == compression.ZStd {
		mt = types.OCILayerZStd
	}
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil },
		tarball.WithCompression(c), tarball.WithMediaType(mt), tarball.WithCompressionLevel(1))
	must(t, err)
	img, err := mutate.AppendLayers(mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON), l)
	must(t, err)
	return img
}

// TestForeignLayerPushesBackUnchanged: a layer another tool made (its tar
// is not strata's, so the unpacked dir cannot be re-tarred to it) pulled
// and pushed back to another repository keeps its blob digest; pushed with
// the other compression, it is transcoded from the pulled blob, and the
// registry's image is valid (each blob decompresses to its DiffID).
func TestForeignLayerPushesBackUnchanged(t *testing.T) {
	reg := newRegistry(t)
	o := opts(reg)
	for _, c := range []struct {
		comp  compression.Compression
		name  string
		other string
	}{{compression.GZip, layer.Gzip, layer.Zstd}, {compression.ZStd, layer.Zstd, layer.Gzip}} {
		t.Run(c.name, func(t *testing.T) {
			src := foreignImage(t, c.comp)
			ref := reg.host + "/foreign/" + c.name + ":1"
			r, err := o.ParseReference(ref)
			must(t, err)
			must(t, remote.Write(r, src, o.remoteOptions(ctx, nil)...))
			srcLayers, err := src.Layers()
			must(t, err)
			srcDigest, _ := srcLayers[0].Digest()

			s, err := layer.Open(t.TempDir())
			must(t, err)
			p, err := Pull(ctx, s, ref, Expect{}, o)
			must(t, err)
			defer p.Release()

			back, err := Push(ctx, s, p.Image, []string{reg.host + "/again/" + c.name + ":1"}, PushOptions{Options: Options{Insecure: o.Insecure, Keychain: o.Keychain, Compression: c.name}})
			must(t, err)
			if back.Digest != p.Digest {
				t.Errorf("pushed back as manifest %s, pulled as %s", back.Digest, p.Digest)
			}
			got := remoteImage(t, o, reg.host+"/again/"+c.name+":1")
			gl, err := got.Layers()
			must(t, err)
			if d, _ := gl[0].Digest(); d != srcDigest {
				t.Errorf("the layer went back as %s, it came as %s", d, srcDigest)
			}

			// The other compression: made from the pulled blob.
			_, err = Push(ctx, s, p.Image, []string{reg.host + "/other/" + c.name + ":1"}, PushOptions{Options: Options{Insecure: o.Insecure, Keychain: o.Keychain, Compression: c.other}})
			must(t, err)
			checkBlobs(t, remoteImage(t, o, reg.host+"/other/"+c.name+":1"))
		})
	}
}

func remoteImage(t *testing.T, o Options, ref string) v1.Image {
	t.Helper()
	r, err := o.ParseReference(ref)
	must(t, err)
	img, err := remote.Image(r, o.remoteOptions(ctx, nil)...)
	must(t, err)
	return img
}

// checkBlobs: each of img's layer blobs hashes to its digest and
// decompresses (by its media type) to its DiffID. (validate.Image reads
// zstd layers as gzip.)
func checkBlobs(t *testing.T, img v1.Image) {
	t.Helper()
	ls, err := img.Layers()
	must(t, err)
	for _, l := range ls {
		mt, _ := l.MediaType()
		d, _ := l.Digest()
		diff, _ := l.DiffID()
		rc, err := l.Compressed()
		must(t, err)
		data, err := io.ReadAll(rc)
		rc.Close()
		must(t, err)
		if got := sha256.Sum256(data); "sha256:"+hex.EncodeToString(got[:]) != d.String() {
			t.Fatalf("layer %s: its bytes hash otherwise", d)
		}
		var r io.Reader
		if c, _ := layer.CompressionOf(string(mt)); c == layer.Zstd {
			zr, err := zstd.NewReader(bytes.NewReader(data))
			must(t, err)
			defer zr.Close()
			r = zr
		} else {
			r, err = gzip.NewReader(bytes.NewReader(data))
			must(t, err)
		}
		h := sha256.New()
		_, err = io.Copy(h, r)
		must(t, err)
		if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != diff.String() {
			t.Fatalf("layer %s (%s) decompresses to %s, its DiffID is %s", d, mt, got, diff)
		}
	}
}
