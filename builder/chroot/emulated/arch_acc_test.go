package emulated

// End-to-end test of a foreign architecture: an arm64 minbase through
// qemu-user (binfmt_misc, F flag), a child on it, an amd64 child on it
// refused, and the host's binfmt_misc as it was before.

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strata-build/packer-plugin-strata/export"
	"github.com/strata-build/packer-plugin-strata/internal/acctest"
	"github.com/strata-build/packer-plugin-strata/registry/regtest"
)

// binfmtState is what the host's binfmt_misc holds: mounted or not, and its
// handlers with their flags.
func binfmtState(t *testing.T) string {
	t.Helper()
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	var s []string
	for _, l := range strings.Split(string(mounts), "\n") {
		if strings.Contains(l, " - binfmt_misc ") {
			s = append(s, "mounted")
		}
	}
	ents, _ := os.ReadDir("/proc/sys/fs/binfmt_misc")
	for _, e := range ents {
		b, _ := os.ReadFile(filepath.Join("/proc/sys/fs/binfmt_misc", e.Name()))
		s = append(s, e.Name()+"="+strings.ReplaceAll(strings.TrimSpace(string(b)), "\n", ";"))
	}
	return strings.Join(s, "\n")
}

func TestAccArchitecture(t *testing.T) {
	// Beside the package's other tests: a TCG boot and qemu-user's emulated
	// maintainer scripts keep about one core busy each (package doc).
	t.Parallel()
	e := acctest.Setup(t)
	if _, err := os.Stat("/usr/lib/binfmt.d/qemu-aarch64.conf"); err != nil {
		t.Skip("needs qemu-user-static (make test-deps)")
	}
	before := binfmtState(t)
	defer func() {
		if after := binfmtState(t); after != before {
			t.Errorf("the host's binfmt_misc changed:\nbefore:\n%s\nafter:\n%s", before, after)
		}
	}()
	dir := acctest.Scratch(t)
	store := filepath.Join(dir, "store")
	vars := map[string]string{"store_dir": store, "cache_dir": e.CacheDir}

	// One packer build: arm64 and amd64, one version (not named: the
	// builds of one run join one), pushed as an image index.
	reg, err := regtest.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	dockerConfig, err := reg.DockerConfig("")
	if err != nil {
		t.Fatal(err)
	}
	repo := reg.Host + "/arch/base"
	vars["version"], vars["push"], vars["insecure_registries"] = "", `["`+repo+`"]`, `["`+reg.Host+`"]`
	r := e.StartEnv(t, dir, acctest.Fixture("arch.pkr.hcl"), vars, []string{"DOCKER_CONFIG=" + dockerConfig}, "-only=strata-chroot.base,strata-chroot.amd64")
	r.Wait(t, 15*time.Minute)
	if r.Code != 0 {
		t.Fatalf("arm64 + amd64 base: exit %d:\n%s", r.Code, r.Output())
	}
	delete(vars, "version")
	delete(vars, "push")
	delete(vars, "insecure_registries")
	acctest.AssertClean(t, store)
	out := filepath.Join(dir, "output-base")
	var m export.Manifest
	b, err := os.ReadFile(filepath.Join(out, export.ManifestName))
	if err != nil || json.Unmarshal(b, &m) != nil || m.Architecture != "arm64" {
		t.Fatalf("artifact.json: %v %s", err, b)
	}
	base := m.ImageID

	t.Run("oci", func(t *testing.T) {
		// The config and the index carry the platform.
		raw, err := exec.Command("skopeo", "inspect", "--config", "--raw", "oci:"+filepath.Join(out, "oci")).Output()
		if err != nil {
			t.Fatal(err)
		}
		var cfg struct{ Architecture, Variant, OS string }
		json.Unmarshal(raw, &cfg)
		if cfg.Architecture != "arm64" || cfg.Variant != "v8" || cfg.OS != "linux" {
			t.Fatalf("config: %s", raw)
		}
		idx, _ := os.ReadFile(filepath.Join(out, "oci", "index.json"))
		var index struct {
			Manifests []struct {
				Platform struct{ Architecture, OS, Variant string }
			}
		}
		if json.Unmarshal(idx, &index) != nil || len(index.Manifests) != 1 || index.Manifests[0].Platform.Architecture != "arm64" || index.Manifests[0].Platform.Variant != "v8" {
			t.Fatalf("index.json: %s", idx)
		}
		pk, _ := os.ReadFile(filepath.Join(out, export.PackagesName))
		if !strings.Contains(string(pk), "\tarm64\t") || strings.Contains(string(pk), "\tamd64\t") {
			t.Fatalf("packages.tsv is not arm64's:\n%.500s", pk)
		}
	})

	t.Run("pushed as an index", func(t *testing.T) {
		raw, err := exec.Command("skopeo", "inspect", "--raw", "--tls-verify=false", "--creds", reg.User+":"+reg.Password, "docker://"+repo+":1.0.0").CombinedOutput()
		var index struct {
			MediaType string
			Manifests []struct {
				Platform struct{ Architecture string }
			}
		}
		if err != nil || json.Unmarshal(raw, &index) != nil || index.MediaType != "application/vnd.oci.image.index.v1+json" || len(index.Manifests) != 2 ||
			index.Manifests[0].Platform.Architecture == index.Manifests[1].Platform.Architecture {
			t.Fatalf("skopeo inspect --raw %s:1.0.0: %v %s", repo, err, raw)
		}
	})

	t.Run("multi-arch version", func(t *testing.T) {
		env := []string{"STRATA_HOME=" + store, "STRATA_CATALOG=sqlite://" + store + "/catalog.db"}
		show := e.Strata(t, env, "show", "archbase@1.0.0", "--json")
		var v struct {
			Architecture string
			Platforms    []struct{ Architecture string }
		}
		if show.Code != 0 || json.Unmarshal([]byte(show.Out), &v) != nil || len(v.Platforms) != 1 ||
			v.Architecture+","+v.Platforms[0].Architecture != "arm64,amd64" && v.Architecture+","+v.Platforms[0].Architecture != "amd64,arm64" {
			t.Fatalf("strata show: %d %s", show.Code, show.Out)
		}
		if o := e.Strata(t, env, "versions", "archbase"); !strings.Contains(o.Out, "ARCH") {
			t.Fatalf("strata versions: %s", o.Out)
		}
		x := filepath.Join(dir, "export")
		if o := e.Strata(t, env, "export", "archbase@1.0.0", "--format", "oci", "--output", x); o.Code != 0 {
			t.Fatalf("strata export: %s", o.Out)
		}
		raw, err := exec.Command("skopeo", "inspect", "--raw", "oci:"+filepath.Join(x, "oci")+":1.0.0").CombinedOutput()
		var index struct {
			MediaType string
			Manifests []struct {
				Platform struct{ Architecture, Variant string }
			}
		}
		if err != nil || json.Unmarshal(raw, &index) != nil || index.MediaType != "application/vnd.oci.image.index.v1+json" || len(index.Manifests) != 2 {
			t.Fatalf("skopeo inspect --raw: %v %s", err, raw)
		}
		picked := filepath.Join(dir, "picked")
		if o, err := exec.Command("skopeo", "copy", "--override-arch", "arm64", "oci:"+filepath.Join(x, "oci")+":1.0.0", "oci:"+picked+":arm").CombinedOutput(); err != nil {
			t.Fatalf("skopeo copy: %v %s", err, o)
		}
		cfg, err := exec.Command("skopeo", "inspect", "--config", "--raw", "oci:"+picked+":arm").Output()
		var c struct{ Architecture string }
		if err != nil || json.Unmarshal(cfg, &c) != nil || c.Architecture != "arm64" {
			t.Fatalf("skopeo copy --override-arch arm64 picked: %v %s", err, cfg)
		}
	})

	t.Run("child", func(t *testing.T) {
		v := map[string]string{"store_dir": store, "cache_dir": e.CacheDir, "parent": base}
		r := e.Build(t, dir, acctest.Fixture("arch.pkr.hcl"), v, "-only=strata-chroot.child")
		if r.Code != 0 {
			t.Fatalf("arm64 child: exit %d:\n%s", r.Code, r.Output())
		}
		acctest.AssertClean(t, store)
	})

	t.Run("amd64 child refused", func(t *testing.T) {
		v := map[string]string{"store_dir": store, "cache_dir": e.CacheDir, "parent": base, "architecture": "amd64", "uname": "x86_64"}
		r := e.Build(t, dir, acctest.Fixture("arch.pkr.hcl"), v, "-only=strata-chroot.child", "-force")
		if r.Code == 0 || !strings.Contains(r.Output(), "a child must be of its parent's architecture; set architecture = \"arm64\"") {
			t.Fatalf("exit %d:\n%s", r.Code, r.Output())
		}
		acctest.AssertClean(t, store)
	})
}
