package registry

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/google/go-containerregistry/pkg/authn"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"

	"github.com/strata-build/packer-plugin-strata/internal/treetar"
	"github.com/strata-build/packer-plugin-strata/layer"
)

var ctx = context.Background()

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// testRegistry is an in-process registry; tamper, when set, rewrites blob
// GET answers; uploads counts blob upload requests.
type testRegistry struct {
	srv     *httptest.Server
	host    string
	tamper  atomic.Bool
	down    atomic.Bool
	uploads atomic.Int64
}

func newRegistry(t *testing.T) *testRegistry {
	t.Helper()
	r := &testRegistry{}
	h := ggcrregistry.New(ggcrregistry.Logger(log_discard()))
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if r.down.Load() {
			hj, ok := w.(http.Hijacker)
			if ok {
				c, _, _ := hj.Hijack()
				c.Close()
				return
			}
		}
		if (req.Method == http.MethodPatch || req.Method == http.MethodPut) && strings.Contains(req.URL.Path, "/blobs/uploads/") && req.ContentLength != 0 {
			r.uploads.Add(1)
		}
		if r.tamper.Load() && req.Method == http.MethodGet && strings.Contains(req.URL.Path, "/blobs/sha256:") {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			body := rec.Body.Bytes()
			if len(body) > 100 && body[0] == 0x1f { // a gzip layer blob, not the config
				body[len(body)/2] ^= 0xff
			}
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.Code)
			w.Write(body)
			return
		}
		h.ServeHTTP(w, req)
	}))
	t.Cleanup(r.srv.Close)
	r.host = strings.TrimPrefix(r.srv.URL, "http://")
	return r
}

func opts(r *testRegistry) Options {
	return Options{Insecure: []string{r.host}, Keychain: authn.NewMultiKeychain()}
}

// build stores a base image and a child with one layer each.
func build(t *testing.T, s *layer.Store) (base, child *layer.Image) {
	t.Helper()
	mk := func(files map[string]string) *layer.Layer {
		dir := filepath.Join(t.TempDir(), "upper")
		must(t, os.Mkdir(dir, 0o755))
		for p, c := range files {
			must(t, os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755))
			must(t, os.WriteFile(filepath.Join(dir, p), []byte(c), 0o644))
		}
		l, _, release, err := s.Commit(ctx, dir, layer.CommitOptions{ClampTime: time.Unix(1700000000, 0)})
		must(t, err)
		release()
		return l
	}
	big := strings.Repeat("base content ", 20000)
	bl := mk(map[string]string{"etc/os-release": "base", "usr/lib/big": big, "etc/gone": "x"})
	base, _, release, err := s.PutImage(layer.ImageSpec{Layer: bl, Created: time.Unix(1700000000, 0)})
	must(t, err)
	release()
	// The child removes a file (a whiteout) and makes a directory opaque.
	cdir := filepath.Join(t.TempDir(), "upper")
	must(t, os.MkdirAll(filepath.Join(cdir, "usr/lib"), 0o755))
	must(t, os.WriteFile(filepath.Join(cdir, "etc-app"), []byte("app"), 0o640))
	must(t, os.Mkdir(filepath.Join(cdir, "etc"), 0o755))
	must(t, unix.Mknod(filepath.Join(cdir, "etc/gone"), unix.S_IFCHR, 0))
	must(t, unix.Lsetxattr(filepath.Join(cdir, "usr/lib"), "trusted.overlay.opaque", []byte("y"), 0))
	must(t, os.Symlink("../etc-app", filepath.Join(cdir, "usr/lib/link")))
	must(t, os.Link(filepath.Join(cdir, "etc-app"), filepath.Join(cdir, "hard")))
	cl, _, release2, err := s.Commit(ctx, cdir, layer.CommitOptions{ClampTime: time.Unix(1700000000, 0)})
	must(t, err)
	release2()
	child, _, release3, err := s.PutImage(layer.ImageSpec{Parent: base, Layer: cl, Created: time.Unix(1700000001, 0)})
	must(t, err)
	release3()
	return base, child
}

// pushedBase builds the images of build in a store of their own and pushes
// the base to host/x/base:1.
func pushedBase(t *testing.T, o Options, host string) (a *layer.Store, base, child *layer.Image) {
	t.Helper()
	a, err := layer.Open(t.TempDir())
	must(t, err)
	base, child = build(t, a)
	_, err = Push(ctx, a, base, []string{host + "/x/base:1"}, PushOptions{Options: o})
	must(t, err)
	return a, base, child
}

func TestPushPullRoundTrip(t *testing.T) {
	reg := newRegistry(t)
	a, err := layer.Open(t.TempDir())
	must(t, err)
	base, child := build(t, a)
	o := opts(reg)
	full, err := Push(ctx, a, base, []string{reg.host + "/team/base-os:1", reg.host + "/team/base-os:dev"}, PushOptions{Options: o})
	must(t, err)
	if full.Blobs < 2 || !strings.HasPrefix(full.Digest, "sha256:") {
		t.Fatalf("base push: %+v", full)
	}
	// The child into another repository, mounting the base's blobs.
	kid, err := Push(ctx, a, child, []string{reg.host + "/team/app:1"}, PushOptions{Options: o, MountFrom: reg.host + "/team/base-os:1"})
	must(t, err)
	cl, _ := a.Layer(child.Layers[1].DiffID)
	cb, _ := a.Blob(ctx, cl, layer.Gzip)
	if kid.Bytes != cb.Size+int64(len(child.Config)) && kid.Bytes > cb.Size+int64(len(child.Config)) {
		t.Fatalf("child push sent %d bytes; its layer blob is %d, its config %d", kid.Bytes, cb.Size, len(child.Config))
	}
	if kid.Bytes >= full.Bytes {
		t.Fatalf("child push sent %d bytes, the full push %d", kid.Bytes, full.Bytes)
	}

	b, err := layer.Open(t.TempDir())
	must(t, err)
	got, err := Pull(ctx, b, reg.host+"/team/app:1", Expect{ImageID: child.ID, Parent: child.Parent}, o)
	must(t, err)
	got.Release()
	if got.Image.ID != child.ID || got.Layers != 2 || got.Digest != kid.Digest {
		t.Fatalf("pulled %s (%d layers, %s), want %s (%s)", got.Image.ID, got.Layers, got.Digest, child.ID, kid.Digest)
	}
	// The unpacked layers re-tar to their DiffIDs: the store is whole.
	for _, ref := range got.Image.Layers {
		l, err := b.Layer(ref.DiffID)
		must(t, err)
		d, _, _, err := layer.DiffID(ctx, l.Dir, layer.CommitOptions{})
		must(t, err)
		if d != ref.DiffID {
			t.Fatalf("layer %s unpacks to a tree that hashes %s", ref.DiffID, d)
		}
	}
	// Pushing from the pulling store sends nothing new.
	again, err := Push(ctx, b, got.Image, []string{reg.host + "/team/app:2"}, PushOptions{Options: o})
	must(t, err)
	if again.Digest != kid.Digest || again.Bytes != 0 {
		t.Fatalf("re-push from the pulled store: %+v", again)
	}
	// A second pull fetches nothing.
	again2, err := Pull(ctx, b, reg.host+"/team/app@"+kid.Digest, Expect{}, o)
	must(t, err)
	again2.Release()
	if again2.Layers != 0 {
		t.Fatalf("second pull fetched %d layers", again2.Layers)
	}
	// Tag moves a channel tag.
	must(t, Tag(ctx, reg.host+"/team/base-os:dev", full.Digest, o))
}

func TestPullRefusesTamperedBlob(t *testing.T) {
	reg := newRegistry(t)
	o := opts(reg)
	pushedBase(t, o, reg.host)
	reg.tamper.Store(true)
	root := t.TempDir()
	b, err := layer.Open(root)
	must(t, err)
	_, err = Pull(ctx, b, reg.host+"/x/base:1", Expect{}, o)
	if err == nil || !strings.Contains(err.Error(), reg.host+"/x/base:1") || !errors.Is(err, layer.ErrDigestMismatch) {
		t.Fatalf("tampered pull: %v", err)
	}
	storeEmpty(t, root)
}

func TestRegistryDownNamesTheReference(t *testing.T) {
	reg := newRegistry(t)
	a, err := layer.Open(t.TempDir())
	must(t, err)
	base, _ := build(t, a)
	o := opts(reg)
	reg.down.Store(true)
	ref := reg.host + "/x/base:1"
	_, err = Push(ctx, a, base, []string{ref}, PushOptions{Options: o})
	if err == nil || !strings.Contains(err.Error(), ref) {
		t.Fatalf("push to a registry that is down: %v", err)
	}
	_, err = Pull(ctx, a, ref, Expect{}, o)
	if err == nil || !strings.Contains(err.Error(), ref) {
		t.Fatalf("pull from a registry that is down: %v", err)
	}
	// It comes back: a rerun completes.
	reg.down.Store(false)
	_, err = Push(ctx, a, base, []string{ref}, PushOptions{Options: o})
	must(t, err)
}

func TestConcurrentPullsFetchOnce(t *testing.T) {
	reg := newRegistry(t)
	o := opts(reg)
	pushedBase(t, o, reg.host)
	b, err := layer.Open(t.TempDir())
	must(t, err)
	var wg sync.WaitGroup
	var fetched atomic.Int64
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, err := Pull(ctx, b, reg.host+"/x/base:1", Expect{}, o)
			if err != nil {
				t.Error(err)
				return
			}
			fetched.Add(int64(p.Layers))
			p.Release()
		}()
	}
	wg.Wait()
	if fetched.Load() != 1 {
		t.Fatalf("4 concurrent pulls fetched %d layers, want 1", fetched.Load())
	}
}

func TestUntarRefusesEscapes(t *testing.T) {
	var buf strings.Builder
	_ = buf
	pr, pw := io.Pipe()
	go func() {
		tw := newTar(pw)
		tw.symlink("./a", "/etc")
		tw.file("./a/passwd", "x")
		pw.CloseWithError(tw.close())
	}()
	err := layer.Untar(pr, t.TempDir())
	if err == nil {
		t.Fatal("a member below a symlink was written")
	}
	_ = treetar.WhiteoutPrefix
	_ = errors.New
}
