package catalogtest

import (
	"testing"

	"github.com/strata-build/packer-plugin-strata/catalog"
)

// testMultiArch: a version registered again for another architecture gains
// a platform; the same architecture again, or none, is a conflict; channels
// move the whole version and a rollback brings every architecture back.
func testMultiArch(t *testing.T, c *catalog.Catalog) {
	reg := func(version, arch, id string) (*catalog.Version, error) {
		return c.Register(ctx, &catalog.Version{Image: "multi", Version: version, Architecture: arch, ImageID: digest(id),
			Layers: []string{digest("layer-" + id)}}, catalog.RegisterOptions{})
	}
	if _, err := reg("1.0.0", "amd64", "a1"); err != nil {
		t.Fatal(err)
	}
	v, err := reg("1.0.0", "arm64", "b1")
	if err != nil || len(v.Platforms) != 1 || v.Platforms[0].Architecture != "arm64" || v.ImageID != digest("a1") {
		t.Fatalf("%+v %v", v, err)
	}
	_, err = reg("1.0.0", "arm64", "b2")
	mustIs(t, err, catalog.ErrConflict)
	_, err = reg("1.0.0", "", "c")
	mustIs(t, err, catalog.ErrConflict)

	got, err := c.Get(ctx, "multi", "1.0.0")
	if err != nil || got.Architecture != "amd64" || len(got.Platforms) != 1 {
		t.Fatalf("%+v %v", got, err)
	}
	arm, ok := got.ForArch("arm64")
	if !ok || arm.ImageID != digest("b1") || arm.Architecture != "arm64" || len(arm.Layers) != 1 || arm.Layers[0] != digest("layer-b1") {
		t.Fatalf("arm64: %+v %v", arm, ok)
	}
	if _, ok := got.ForArch("riscv64"); ok {
		t.Fatal("a version without riscv64 answered for it")
	}
	// Found by either image ID, as that architecture's view.
	for _, want := range []struct{ id, arch string }{{"a1", "amd64"}, {"b1", "arm64"}} {
		var vs []*catalog.Version
		if err := c.Store().View(ctx, func(tx catalog.Tx) error {
			var err error
			vs, err = tx.VersionsByImageID(digest(want.id))
			return err
		}); err != nil || len(vs) != 1 || vs[0].Version != "1.0.0" || vs[0].Architecture != want.arch || vs[0].ImageID != digest(want.id) {
			t.Fatalf("VersionsByImageID(%s): %+v %v", want.id, vs, err)
		}
	}

	// The channel moves the version, every architecture with it.
	if _, _, err := c.Promote(ctx, "multi", "prod", "1.0.0", catalog.MoveOptions{}); err != nil {
		t.Fatal(err)
	}
	reg("1.0.1", "amd64", "a2")
	reg("1.0.1", "arm64", "b3")
	if _, _, err := c.Promote(ctx, "multi", "prod", "1.0.1", catalog.MoveOptions{}); err != nil {
		t.Fatal(err)
	}
	if r, _ := c.Resolve(ctx, "multi", "prod"); r == nil || r.Version != "1.0.1" {
		t.Fatalf("%+v", r)
	}
	if _, _, err := c.Rollback(ctx, "multi", "prod", catalog.MoveOptions{}); err != nil {
		t.Fatal(err)
	}
	r, err := c.Resolve(ctx, "multi", "prod")
	if err != nil {
		t.Fatal(err)
	}
	if arm, ok := r.ForArch("arm64"); r.Version != "1.0.0" || !ok || arm.ImageID != digest("b1") {
		t.Fatalf("after the rollback: %+v", r)
	}

	// Without a version: the registrations of one packer run (two sources,
	// one per architecture) make one version; another run, or the same
	// architecture again in the run, makes a new one.
	run := func(uuid, arch, id string) *catalog.Version {
		t.Helper()
		v, err := c.Register(ctx, &catalog.Version{Image: "multi", Architecture: arch, ImageID: digest(id),
			Layers: []string{digest("layer-" + id)}, Build: catalog.BuildInfo{PackerRunUUID: uuid}}, catalog.RegisterOptions{Scheme: catalog.SchemeSemver})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	a := run("run-7", "arm64", "r7-arm")
	b := run("run-7", "amd64", "r7-amd")
	if a.Version != "1.0.2" || b.Version != a.Version || len(b.Platforms) != 1 {
		t.Fatalf("one run, two architectures: %s and %s (%+v)", a.Version, b.Version, b)
	}
	if again := run("run-7", "amd64", "r7-amd-2"); again.Version != "1.0.3" {
		t.Fatalf("the same architecture again in the run joined %s", again.Version)
	}
	if other := run("run-8", "arm64", "r8-arm"); other.Version != "1.0.4" {
		t.Fatalf("another run joined %s", other.Version)
	}
}
