package registry

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/strata-build/packer-plugin-strata/layer"
)

// storeEmpty fails when a refused pull left anything in the store.
func storeEmpty(t *testing.T, root string) {
	t.Helper()
	for _, d := range []string{"layers", "images", "blobs", "tmp"} {
		if ents, _ := os.ReadDir(filepath.Join(root, d)); len(ents) != 0 {
			t.Fatalf("a refused pull left %d entries in %s", len(ents), d)
		}
	}
}

// TestPullRefusesAnotherImageID: a reference that holds another image than
// the one expected (the catalog's image ID) is refused before anything is
// stored.
func TestPullRefusesAnotherImageID(t *testing.T) {
	reg := newRegistry(t)
	o := opts(reg)
	_, base, child := pushedBase(t, o, reg.host)
	root := t.TempDir()
	b, err := layer.Open(root)
	must(t, err)
	_, err = Pull(ctx, b, reg.host+"/x/base:1", Expect{ImageID: child.ID}, o)
	if err == nil || !strings.Contains(err.Error(), child.ID) || !strings.Contains(err.Error(), base.ID) {
		t.Fatalf("pull of the wrong image: %v", err)
	}
	storeEmpty(t, root)
}

// gatedRegistry is an in-process registry whose GET of the blob gate names
// waits, once, until release is closed; started is closed when it is asked.
type gatedRegistry struct {
	host             string
	gate             atomic.Value // string
	started, release chan struct{}
	once             sync.Once
}

func newGatedRegistry(t *testing.T) *gatedRegistry {
	t.Helper()
	g := &gatedRegistry{started: make(chan struct{}), release: make(chan struct{})}
	g.gate.Store("")
	h := ggcrregistry.New(ggcrregistry.Logger(log_discard()))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if gate := g.gate.Load().(string); gate != "" && req.Method == http.MethodGet && strings.HasSuffix(req.URL.Path, "/blobs/"+gate) {
			g.once.Do(func() {
				close(g.started)
				<-g.release
			})
		}
		h.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	g.host = strings.TrimPrefix(srv.URL, "http://")
	return g
}

// TestPullHoldsTheLayersItHas: a layer the store has already is held from
// the moment the pull finds it: a removal of unused layers (gc) running
// while the pull fetches the others leaves it, and the image is stored.
func TestPullHoldsTheLayersItHas(t *testing.T) {
	reg := newGatedRegistry(t)
	o := Options{Insecure: []string{reg.host}, Keychain: authn.NewMultiKeychain()}
	a, base, child := pushedBase(t, o, reg.host)
	_, err := Push(ctx, a, child, []string{reg.host + "/x/app:1"}, PushOptions{Options: o})
	must(t, err)
	cl, err := a.Layer(child.Layers[1].DiffID)
	must(t, err)
	cb, err := a.Blob(ctx, cl, layer.Gzip)
	must(t, err)

	// Store b has the base's layer, used by no image.
	b, err := layer.Open(t.TempDir())
	must(t, err)
	p, err := Pull(ctx, b, reg.host+"/x/base:1", Expect{}, o)
	must(t, err)
	p.Release()
	must(t, b.RemoveImage(base.ID))
	baseLayer := base.Layers[0].DiffID

	reg.gate.Store(cb.Digest)
	done := make(chan error, 1)
	go func() {
		p, err := Pull(ctx, b, reg.host+"/x/app:1", Expect{ImageID: child.ID}, o)
		if err == nil {
			p.Release()
		}
		done <- err
	}()
	select {
	case <-reg.started:
	case err := <-done:
		t.Fatalf("the pull ended before fetching the child layer: %v", err)
	}
	removeErr := b.RemoveLayerIfUnused(baseLayer)
	close(reg.release)
	if err := <-done; err != nil {
		t.Fatalf("the pull failed (removal: %v): %v", removeErr, err)
	}
	if _, err := b.Layer(baseLayer); err != nil {
		t.Fatalf("the base layer went while the pull held it: %v", err)
	}
}

// rawManifest is a manifest as given, for remote.Put.
type rawManifest struct {
	data []byte
	mt   types.MediaType
}

func (r rawManifest) RawManifest() ([]byte, error)        { return r.data, nil }
func (r rawManifest) MediaType() (types.MediaType, error) { return r.mt, nil }

// TestPullRefusesUnsizedLayers: a manifest that gives a layer no size (0,
// or less) is refused before anything is fetched.
func TestPullRefusesUnsizedLayers(t *testing.T) {
	reg := newRegistry(t)
	o := opts(reg)
	pushedBase(t, o, reg.host)
	img := remoteImage(t, o, reg.host+"/x/base:1")
	m, err := img.Manifest()
	must(t, err)
	for _, size := range []int64{0, -1} {
		m.Layers[0].Size = size
		data, err := json.Marshal(m)
		must(t, err)
		ref := reg.host + "/x/unsized:" + strconv.FormatInt(size+1, 10)
		r, err := o.ParseReference(ref)
		must(t, err)
		must(t, remote.Put(r, rawManifest{data, m.MediaType}, o.remoteOptions(ctx, nil)...))
		root := t.TempDir()
		b, err := layer.Open(root)
		must(t, err)
		_, err = Pull(ctx, b, ref, Expect{}, o)
		if err == nil || !strings.Contains(err.Error(), "size") {
			t.Fatalf("size %d: %v", size, err)
		}
		storeEmpty(t, root)
	}
}
