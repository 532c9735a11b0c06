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

// Disks are made for amd64 and arm64, each with its own EFI names, root
// partition type and console; the PE machine types name their
// architectures.
func TestDiskArches(t *testing.T) {
	if got := DiskArches(); len(got) != 2 || got[0] != "amd64" || got[1] != "arm64" {
		t.Fatal(got)
	}
	a, _ := Lookup("arm64")
	d := a.Disk
	if d.EFI != "aa64" || d.Grub != "arm64-efi" || d.RootType != "b921b045-1df0-41c3-af44-4c6f280d3fae" || d.Console != "ttyAMA0" ||
		d.Kernel != "linux-image-cloud-arm64" || d.QEMU != "qemu-system-aarch64" || d.QEMUPackage != "qemu-system-arm" || d.Firmware != "qemu-efi-aarch64" {
		t.Errorf("arm64: %+v", d)
	}
	if x, _ := Lookup("amd64"); x.Disk.EFI != "x64" || x.Disk.Console != "ttyS0" || x.Disk.RootType != "4f68bce3-e8cd-4db1-96e7-fbcaf984b709" {
		t.Errorf("amd64: %+v", x.Disk)
	}
	if r, _ := Lookup("riscv64"); r.Disk != nil {
		t.Error("riscv64 has no disk")
	}
	for m, want := range map[uint16]string{0x8664: "amd64", 0xaa64: "arm64", 0x14c: "i386"} {
		if a, ok := FromPE(m); !ok || a.Name != want {
			t.Errorf("%#x: %+v", m, a)
		}
	}
	if _, ok := FromPE(0); ok {
		t.Error("machine type 0")
	}
}
