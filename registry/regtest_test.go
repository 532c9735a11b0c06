package registry

import (
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/strata-build/packer-plugin-strata/layer"
	"github.com/strata-build/packer-plugin-strata/registry/regtest"
)

// startDistribution starts Debian's docker-registry, skipping when it is
// not installed (make test installs it).
func startDistribution(t *testing.T) *regtest.Server {
	t.Helper()
	s, err := regtest.Start()
	if err != nil {
		t.Skip(err)
	}
	t.Cleanup(s.Close)
	return s
}

func TestDistributionCredentials(t *testing.T) {
	srv := startDistribution(t)
	a, err := layer.Open(t.TempDir())
	must(t, err)
	base, child := build(t, a)
	ref := srv.Host + "/team/base-os:1"
	// Wrong credentials: refused, and the password is in no error.
	wrong, err := srv.DockerConfig("not-the-password")
	must(t, err)
	t.Setenv("DOCKER_CONFIG", wrong)
	o := Options{Insecure: []string{srv.Host}, Keychain: authn.DefaultKeychain}
	_, err = Push(ctx, a, base, []string{ref}, PushOptions{Options: o})
	if err == nil || !strings.Contains(err.Error(), ref) || strings.Contains(err.Error(), "not-the-password") || strings.Contains(err.Error(), srv.Password) {
		t.Fatalf("push with wrong credentials: %v", err)
	}
	right, err := srv.DockerConfig("")
	must(t, err)
	t.Setenv("DOCKER_CONFIG", right)
	_, err = Push(ctx, a, base, []string{ref}, PushOptions{Options: o})
	must(t, err)

	// A registry stopped mid-push: the push fails naming the reference,
	// a rerun after it is back completes, uploading what is missing.
	srv.Stop()
	kidRef := srv.Host + "/team/app:1"
	_, err = Push(ctx, a, child, []string{kidRef}, PushOptions{Options: o})
	if err == nil || !strings.Contains(err.Error(), kidRef) {
		t.Fatalf("push to a stopped registry: %v", err)
	}
	must(t, srv.Restart())
	before, _ := srv.BlobUploads()
	p, err := Push(ctx, a, child, []string{kidRef}, PushOptions{Options: o, MountFrom: ref})
	must(t, err)
	after, _ := srv.BlobUploads()
	if len(before) < 2 {
		t.Fatalf("the access log shows %d blob uploads of the base push", len(before))
	}
	// The child layer and the config; the base layer is mounted.
	if n := len(after) - len(before); n > 2 {
		t.Fatalf("the child push uploaded %d blobs (%v), want its layer and config only; %+v", n, after[len(before):], p)
	}
	b, err := layer.Open(t.TempDir())
	must(t, err)
	got, err := Pull(ctx, b, kidRef, Expect{}, o)
	must(t, err)
	got.Release()
	if got.Image.ID != child.ID {
		t.Fatalf("pulled %s, want %s", got.Image.ID, child.ID)
	}
}

// requestLog records the requests a client sends and their answers.
type requestLog struct {
	mu   sync.Mutex
	next http.RoundTripper
	seen []string
}

func (l *requestLog) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := l.next.RoundTrip(req)
	status := "error"
	if err == nil {
		status = strconv.Itoa(resp.StatusCode)
	}
	kind := req.URL.Path
	switch {
	case strings.Contains(kind, "/blobs/uploads/") && req.URL.Query().Get("mount") != "":
		kind = "mount"
	case strings.Contains(kind, "/blobs/uploads/"):
		kind = "upload"
	case strings.Contains(kind, "/blobs/"):
		kind = "blob"
	case strings.Contains(kind, "/manifests/"):
		kind = "manifest"
	}
	l.mu.Lock()
	l.seen = append(l.seen, req.Method+" "+kind+" "+status)
	l.mu.Unlock()
	return resp, err
}

func (l *requestLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.seen
	l.seen = nil
	sort.Strings(s)
	return s
}

// TestDistributionPushRequests counts the requests of pushes to Debian's
// docker-registry: a child whose base is in another repository is one
// ping, one mount of the base layer, one POST and one PUT for each of its
// own two blobs (the POST asking for a mount from the target repository
// doubles as the existence check) and the manifest; a push of what the
// repository has already sends no blob.
func TestDistributionPushRequests(t *testing.T) {
	srv := startDistribution(t)
	dc, err := srv.DockerConfig("")
	must(t, err)
	t.Setenv("DOCKER_CONFIG", dc)
	rl := &requestLog{next: http.DefaultTransport}
	o := Options{Insecure: []string{srv.Host}, Transport: rl}
	a, _, child := pushedBase(t, o, srv.Host)
	rl.take()

	check := func(what string, want []string) {
		t.Helper()
		got := rl.take()
		sort.Strings(want)
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s: %d requests\n%s\nwant %d\n%s", what, len(got), strings.Join(got, "\n"), len(want), strings.Join(want, "\n"))
		}
	}
	before, _ := srv.BlobUploads()
	p, err := Push(ctx, a, child, []string{srv.Host + "/team/app:1"}, PushOptions{Options: o, MountFrom: srv.Host + "/x/base:1"})
	must(t, err)
	check("child push, its base mounted", []string{"GET /v2/ 401", "POST mount 201",
		"POST mount 202", "PUT upload 201", "POST mount 202", "PUT upload 201", "PUT manifest 201"})
	after, _ := srv.BlobUploads()
	if p.Blobs != 2 || len(after)-len(before) != 2 {
		t.Errorf("child push: %d blobs sent, the registry completed %d uploads; want 2 (its layer and config)", p.Blobs, len(after)-len(before))
	}

	// Again, to another tag of the same repository, without a hint: the
	// repository has every blob, nothing is sent.
	p, err = Push(ctx, a, child, []string{srv.Host + "/team/app:2", srv.Host + "/team/app:latest"}, PushOptions{Options: o})
	must(t, err)
	check("re-push", []string{"GET /v2/ 401", "POST mount 201", "POST mount 201", "POST mount 201", "PUT manifest 201", "PUT manifest 201"})
	if p.Bytes != 0 {
		t.Errorf("re-push sent %d bytes", p.Bytes)
	}

	// The whole image to a new repository: nothing to mount from, so the
	// registry's answer to a mount is not trusted to mean "absent" until
	// it has mounted something, and each blob is asked for (HEAD) once.
	_, err = Push(ctx, a, child, []string{srv.Host + "/full/app:1"}, PushOptions{Options: o})
	must(t, err)
	var want []string
	for range 3 {
		want = append(want, "POST mount 202", "HEAD blob 404", "PUT upload 201")
	}
	check("full push", append(want, "GET /v2/ 401", "PUT manifest 201"))

	// A pull: one ping for the manifest, the config and both layers.
	b, err := layer.Open(t.TempDir())
	must(t, err)
	got, err := Pull(ctx, b, srv.Host+"/team/app:1", Expect{}, o)
	must(t, err)
	got.Release()
	check("pull", []string{"GET /v2/ 401", "GET manifest 200", "GET blob 200", "GET blob 200", "GET blob 200"})
}
