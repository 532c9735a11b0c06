package catalog

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	catalogdb "github.com/strata-build/packer-plugin-strata/catalog"
	"github.com/strata-build/packer-plugin-strata/catalog/postgres/pgtest"
	"github.com/strata-build/packer-plugin-strata/internal/acctest"
	"github.com/strata-build/packer-plugin-strata/internal/storeroot"
	"github.com/strata-build/packer-plugin-strata/layer"
	"github.com/strata-build/packer-plugin-strata/registry/regtest"
)

// TestAccTwoHostsThroughRegistry: two build hosts (two store roots) share
// one PostgreSQL catalog and one registry (Debian's docker-registry with
// htpasswd auth, credentials in a Docker config). Host A builds base-os and
// pushes it; host B builds app on base-os's dev channel through the data
// source, which pulls the base's layers, and pushes app uploading only its
// own layer. skopeo and umoci read app from the registry as B's flattened
// dir output, file by file; host C builds on base-os named by image ID
// alone (the builder pulls it); promote --retag moves a channel tag.
func TestAccTwoHostsThroughRegistry(t *testing.T) {
	e := acctest.Setup(t)
	pg, err := pgtest.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Stop()
	url, err := pg.URL("twohosts")
	if err != nil {
		t.Fatal(err)
	}
	reg, err := regtest.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	dockerConfig, err := reg.DockerConfig("")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("DOCKER_CONFIG", dockerConfig)
	hostA, hostB := acctest.Scratch(t), acctest.Scratch(t) // the store roots
	runA, runB := t.TempDir(), t.TempDir()                 // where packer runs
	vars := func(store string) map[string]string {
		return map[string]string{"store_dir": store, "cache_dir": e.CacheDir, "catalog": url, "registry": reg.Host}
	}
	fixture := func(n string) string { p, _ := filepath.Abs("test-fixtures/" + n); return p }
	ctx := context.Background()
	c, err := catalogdb.Open(url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	var base *catalogdb.Version
	if !t.Run("A builds and pushes base-os", func(t *testing.T) {
		r := e.Build(t, runA, fixture("registry-base.pkr.hcl"), vars(hostA))
		if r.Code != 0 || !strings.Contains(r.Out, "Pushed sha256:") {
			t.Fatalf("host A: exit %d\n%s", r.Code, r.Out)
		}
		if base, err = c.Get(ctx, "base-os", "1.0.0"); err != nil {
			t.Fatal(err)
		}
		refs := base.RegistryRefs()
		if len(refs) != 2 || refs[0].Ref != reg.Host+"/team/base-os:1.0.0" || refs[1].Ref != reg.Host+"/team/base-os:dev" {
			t.Fatalf("recorded references %+v", refs)
		}
		acctest.AssertClean(t, hostA)
	}) {
		t.FailNow()
	}
	baseUploads, _ := reg.BlobUploads()

	var app *catalogdb.Version
	if !t.Run("B builds app on base-os/dev, pulling the base", func(t *testing.T) {
		r := e.Build(t, runB, fixture("registry-app.pkr.hcl"), vars(hostB))
		if r.Code != 0 {
			t.Fatalf("host B: exit %d\n%s", r.Code, r.Out)
		}
		s, err := layer.OpenExisting(storeroot.Layout{Root: hostB}.Layers())
		if err != nil {
			t.Fatal(err)
		}
		if img, err := s.Image(base.ImageID); err != nil || s.Complete(img) != nil {
			t.Fatalf("host B's store lacks base-os: %v", err)
		}
		if app, err = c.Get(ctx, "app", "1.0.0"); err != nil {
			t.Fatal(err)
		}
		if app.ParentID != base.ImageID || len(app.Layers) != len(base.Layers)+1 {
			t.Fatalf("app %+v is not on base-os %s", app, base.ImageID)
		}
		// Only app's own blobs went up: its layer and its config.
		all, _ := reg.BlobUploads()
		sent := all[len(baseUploads):]
		if len(sent) > 2 || len(sent) == 0 {
			t.Fatalf("host B's push uploaded %d blobs %v; want app's layer and config only", len(sent), sent)
		}
		for _, repo := range sent {
			if repo != "team/app" {
				t.Fatalf("host B's push uploaded to %s: %v", repo, sent)
			}
		}
		acctest.AssertClean(t, hostB)
	}) {
		t.FailNow()
	}

	t.Run("skopeo and umoci read app as B's dir output", func(t *testing.T) {
		ref := "docker://" + reg.Host + "/team/app:1.0.0"
		creds := reg.User + ":" + reg.Password
		r := e.Shell(t, nil, "skopeo", "inspect", "--tls-verify=false", "--creds", creds, ref)
		var info struct {
			Digest string
			Layers []string
		}
		if r.Code != 0 || json.Unmarshal([]byte(r.Out), &info) != nil {
			t.Fatalf("skopeo inspect: %s", r.Out)
		}
		if rr := app.RegistryRefs(); len(info.Layers) != len(app.Layers) || len(rr) == 0 || info.Digest != rr[0].Digest {
			t.Fatalf("skopeo inspect: %+v; catalog: %+v", info, rr)
		}
		work := t.TempDir()
		r = e.Shell(t, nil, "skopeo", "copy", "--src-tls-verify=false", "--src-creds", creds, ref, "oci:"+filepath.Join(work, "oci")+":app")
		if r.Code != 0 {
			t.Fatalf("skopeo copy: %s", r.Out)
		}
		r = e.Shell(t, nil, "umoci", "unpack", "--image", filepath.Join(work, "oci")+":app", filepath.Join(work, "bundle"))
		if r.Code != 0 {
			t.Fatalf("umoci unpack: %s", r.Out)
		}
		sameTree(t, filepath.Join(runB, "output-app", "rootfs"), filepath.Join(work, "bundle", "rootfs"))
	})

	t.Run("C builds on base-os by image ID and the builder pulls it", func(t *testing.T) {
		hostC, runC := acctest.Scratch(t), t.TempDir()
		t.Setenv("STRATA_CATALOG", url)
		t.Setenv("STRATA_INSECURE_REGISTRIES", reg.Host)
		r := e.Build(t, runC, fixture("registry-direct.pkr.hcl"), map[string]string{"store_dir": hostC, "cache_dir": e.CacheDir, "parent": base.ImageID})
		if r.Code != 0 {
			t.Fatalf("host C: exit %d\n%s", r.Code, r.Out)
		}
		acctest.AssertClean(t, hostC)
	})

	t.Run("promote --retag moves the channel tag", func(t *testing.T) {
		r := e.Strata(t, []string{"STRATA_INSECURE_REGISTRIES=" + reg.Host}, "--catalog", url, "--store", hostB, "promote", "app@1.0.0", "production", "--retag")
		if r.Code != 0 || !strings.Contains(r.Out, "retagged "+reg.Host+"/team/app:production") {
			t.Fatalf("promote --retag: %s", r.Out)
		}
		r = e.Shell(t, nil, "skopeo", "inspect", "--tls-verify=false", "--creds", reg.User+":"+reg.Password, "docker://"+reg.Host+"/team/app:production")
		if r.Code != 0 || !strings.Contains(r.Out, app.RegistryRefs()[0].Digest) {
			t.Fatalf("app:production after promote --retag: %s", r.Out)
		}
	})
}

// sameTree compares two trees file by file: type, mode, owner, size,
// content, link target.
func sameTree(t *testing.T, want, got string) {
	t.Helper()
	seen := map[string]bool{}
	n := 0
	filepath.WalkDir(want, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(want, p)
		seen[rel] = true
		n++
		if a, b := describe(p), describe(filepath.Join(got, rel)); a != b {
			t.Errorf("%s: B's dir output has %s, the registry's image %s", rel, a, b)
		}
		return nil
	})
	filepath.WalkDir(got, func(p string, d fs.DirEntry, err error) error {
		rel, _ := filepath.Rel(got, p)
		if err == nil && !seen[rel] {
			t.Errorf("%s: only in the registry's image", rel)
		}
		return nil
	})
	if n < 1000 {
		t.Errorf("compared only %d entries", n)
	}
}

func describe(p string) string {
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		return "missing"
	}
	s := fmt.Sprintf("mode %o owner %d:%d", st.Mode, st.Uid, st.Gid)
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		f, err := os.Open(p)
		if err != nil {
			return err.Error()
		}
		defer f.Close()
		h := sha256.New()
		io.Copy(h, f)
		s += fmt.Sprintf(" size %d sha256 %x", st.Size, h.Sum(nil))
	case unix.S_IFLNK:
		l, _ := os.Readlink(p)
		s += " -> " + l
	case unix.S_IFCHR, unix.S_IFBLK:
		s += fmt.Sprintf(" dev %d", st.Rdev)
	}
	return s
}
