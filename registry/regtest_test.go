package registry

import (
	"strings"
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
