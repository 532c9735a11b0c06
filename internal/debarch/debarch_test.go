package debarch

import "testing"

func TestLookupAndOCI(t *testing.T) {
	a, ok := Lookup("arm64")
	if !ok || a.QEMU != "aarch64" || a.OCI != "arm64" || a.Variant != "v8" {
		t.Fatalf("%+v", a)
	}
	if _, ok := Lookup("aarch64"); ok {
		t.Fatal("aarch64 is QEMU's name, not Debian's")
	}
	if b, ok := FromOCI("arm", "v5"); !ok || b.Name != "armel" {
		t.Fatalf("%+v", b)
	}
	if !RunsNatively("amd64", "i386") || RunsNatively("amd64", "arm64") || !RunsNatively("arm64", "arm64") {
		t.Fatal("RunsNatively")
	}
}
