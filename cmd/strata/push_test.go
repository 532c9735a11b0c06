package main

import (
	"context"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/strata-build/packer-plugin-strata/internal/storeroot"
	"github.com/strata-build/packer-plugin-strata/layer"
)

// TestCLIPushPullRetag: push two versions to an in-process registry,
// promote --retag and rollback --retag move the channel tag, pull fetches
// a version into a fresh store, a registry that is down is named.
func TestCLIPushPullRetag(t *testing.T) {
	srv := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	t.Setenv("STRATA_INSECURE_REGISTRIES", host)
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	c := cli{t, "sqlite://" + filepath.Join(t.TempDir(), "catalog.db")}
	root := t.TempDir()
	s, err := layer.Open(storeroot.Layout{Root: root}.Layers())
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i, content := range []string{"one", "two"} {
		tree := filepath.Join(t.TempDir(), "tree")
		os.MkdirAll(filepath.Join(tree, "etc"), 0o755)
		os.WriteFile(filepath.Join(tree, "etc", "release"), []byte(content), 0o644)
		l, _, release, err := s.Commit(context.Background(), tree, layer.CommitOptions{})
		if err != nil {
			t.Fatal(err)
		}
		release()
		img, _, release, err := s.PutImage(layer.ImageSpec{Layer: l, Created: time.Unix(1700000000+int64(i), 0)})
		if err != nil {
			t.Fatal(err)
		}
		release()
		ids = append(ids, img.ID)
	}
	c.ok("--store", root, "register", "base-os", "--image-id", ids[0], "--version", "1.0")
	c.ok("--store", root, "register", "base-os", "--image-id", ids[1], "--version", "1.1")
	repo := host + "/team/base-os"
	digests := map[string]string{}
	for _, v := range []string{"1.0", "1.1"} {
		out := c.ok("--store", root, "push", "base-os@"+v, repo)
		if !strings.Contains(out, "pushed base-os@"+v+" to "+repo+":"+v) {
			t.Fatalf("push: %s", out)
		}
		digests[v] = out[strings.Index(out, "(sha256:")+1 : strings.Index(out, "(sha256:")+1+71]
	}
	if out := c.ok("show", "base-os@1.0"); !strings.Contains(out, repo+":1.0") {
		t.Errorf("show lists no registry reference:\n%s", out)
	}
	tagIs := func(want string) {
		t.Helper()
		ref, _ := name.ParseReference(repo+":production", name.Insecure)
		d, err := remote.Head(ref)
		if err != nil || d.Digest.String() != want {
			t.Fatalf("production tag: %v %v, want %s", d, err, want)
		}
	}
	if out := c.ok("--store", root, "promote", "base-os@1.0", "production", "--retag"); !strings.Contains(out, "retagged "+repo+":production") {
		t.Fatalf("promote --retag: %s", out)
	}
	tagIs(digests["1.0"])
	c.ok("--store", root, "promote", "base-os@1.1", "production", "--retag")
	tagIs(digests["1.1"])
	if out := c.ok("--store", root, "rollback", "base-os", "production", "--retag"); !strings.Contains(out, "retagged") {
		t.Fatalf("rollback --retag: %s", out)
	}
	tagIs(digests["1.0"])

	fresh := t.TempDir()
	if out := c.ok("--store", fresh, "pull", "base-os@1.1"); !strings.Contains(out, "1 of 1 layer(s) fetched") {
		t.Fatalf("pull: %s", out)
	}
	if out := c.ok("--store", fresh, "pull", repo+":production"); !strings.Contains(out, "1 of 1 layer(s) fetched") {
		t.Fatalf("pull by reference: %s", out)
	}
	srv.Close()
	c.fails(1, repo+":production", "--store", t.TempDir(), "pull", repo+":production")
	// A push that fails records nothing.
	c.fails(1, host+"/team/other:1.0", "--store", root, "push", "base-os@1.0", host+"/team/other")
	if out := c.ok("show", "base-os@1.0"); strings.Contains(out, "team/other") {
		t.Errorf("a failed push was recorded:\n%s", out)
	}
}
