package registry

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"

	"github.com/strata-build/packer-plugin-strata/layer"
)

// TestPushToARegistryThatRefusesMounts: a registry answering a mount
// request with an error gets the plain sequence (HEAD, POST, PUT), and
// blobs it has are not sent again.
func TestPushToARegistryThatRefusesMounts(t *testing.T) {
	h := ggcrregistry.New(ggcrregistry.Logger(log_discard()))
	var refused atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method == http.MethodPost && req.URL.Query().Get("mount") != "" {
			refused.Add(1)
			http.Error(w, `{"errors":[{"code":"UNSUPPORTED","message":"no mounts here"}]}`, http.StatusBadRequest)
			return
		}
		h.ServeHTTP(w, req)
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	o := Options{Insecure: []string{host}}
	a, err := layer.Open(t.TempDir())
	must(t, err)
	base, child := build(t, a)
	_, err = Push(ctx, a, base, []string{host + "/x/base:1"}, PushOptions{Options: o})
	must(t, err)
	p, err := Push(ctx, a, child, []string{host + "/x/app:1"}, PushOptions{Options: o, MountFrom: host + "/x/base:1"})
	must(t, err)
	if refused.Load() == 0 {
		t.Fatal("no mount was asked for")
	}
	// The base layer is in the registry already (its blobs are global
	// here): the child's layer and config only.
	if p.Blobs != 2 {
		t.Fatalf("child push sent %d blobs, want 2: %+v", p.Blobs, p)
	}
	again, err := Push(ctx, a, child, []string{host + "/x/app:2"}, PushOptions{Options: o})
	must(t, err)
	if again.Bytes != 0 {
		t.Fatalf("re-push sent %d bytes", again.Bytes)
	}
}

// TestUploadLocation: an upload session elsewhere is followed only to a
// public host, never to a private address the registry is not on.
func TestUploadLocation(t *testing.T) {
	req := httptest.NewRequest(http.MethodPost, "http://127.0.0.1:5000/v2/x/blobs/uploads/", nil)
	for loc, ok := range map[string]bool{
		"/v2/x/blobs/uploads/u1?_state=s":             true,
		"http://127.0.0.1:5000/v2/x/blobs/uploads/u1": true,
		"https://storage.example.com/bucket/u1?sig=s": true,
		"http://10.0.0.5/v2/x/blobs/uploads/u1":       false,
		"http://169.254.169.254/latest/meta-data":     false,
		"http://[::1]:8080/v2/x/blobs/uploads/u1":     false,
		"": false,
	} {
		resp := &http.Response{Request: req, Header: http.Header{}}
		if loc != "" {
			resp.Header.Set("Location", loc)
		}
		got, err := location(resp)
		if (err == nil) != ok {
			t.Errorf("Location %q: %q, %v", loc, got, err)
		}
	}
}
