package export

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/strata-build/packer-plugin-strata/internal/debarch"
	"github.com/strata-build/packer-plugin-strata/internal/inroot"
)

// KernelPackage is what a template for arch installs when its image has no
// kernel (debarch.Disk.Kernel): linux-image-cloud-amd64 for amd64.
func KernelPackage(arch string) string {
	if a, ok := debarch.Lookup(arch); ok && a.Disk != nil {
		return a.Disk.Kernel
	}
	return ""
}

// bootKernel is the kernel a disk boots and its initramfs, as in-image
// paths in /boot.
type bootKernel struct {
	Version string
	Vmlinuz string
	Initrd  string
}

// findKernel finds /boot/vmlinuz-VERSION and its /boot/initrd.img-VERSION
// in the image: want is "auto" (or "") for the only one there, or a
// version. Names are resolved inside the image root only: a link such as
// /boot/vmlinuz-x -> /boot/... of the host leads into the image, never out
// of it, and what a link leads to must be a regular file. pkg is the kernel
// package the error for an image without one names.
func findKernel(root *inroot.Root, want, pkg string) (bootKernel, error) {
	ents, err := root.ReadDir("/boot")
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return bootKernel{}, fmt.Errorf("listing /boot in the image: %w", err)
	}
	var versions []string
	for _, e := range ents {
		v, ok := strings.CutPrefix(e.Name(), "vmlinuz-")
		if !ok || v == "" {
			continue
		}
		if f, err := root.OpenFile("/boot/" + e.Name()); err == nil {
			f.Close()
			versions = append(versions, v)
		}
	}
	sort.Strings(versions)
	if len(versions) == 0 {
		return bootKernel{}, fmt.Errorf("the image has no kernel (no /boot/vmlinuz-*): a disk boots the image's own kernel; install one in the template, such as the %s package with strata-packages (install = [%q])", pkg, pkg)
	}
	var v string
	switch {
	case want == "" || want == "auto":
		if len(versions) > 1 {
			return bootKernel{}, fmt.Errorf("the image has %d kernels (%s): choose one with disk { kernel = \"VERSION\" }, or remove the others", len(versions), strings.Join(versions, ", "))
		}
		v = versions[0]
	default:
		for _, have := range versions {
			if have == want {
				v = have
			}
		}
		if v == "" {
			return bootKernel{}, fmt.Errorf("disk.kernel: the image has no kernel %q in /boot; it has %s", want, strings.Join(versions, ", "))
		}
	}
	k := bootKernel{Version: v, Vmlinuz: "/boot/vmlinuz-" + v, Initrd: "/boot/initrd.img-" + v}
	f, err := root.OpenFile(k.Initrd)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return bootKernel{}, fmt.Errorf("the image has the kernel %s but no initramfs %s: install initramfs-tools in the template (it makes one at every kernel install), or run update-initramfs -c -k %s", k.Vmlinuz, k.Initrd, v)
		}
		return bootKernel{}, fmt.Errorf("the initramfs %s: %w", k.Initrd, err)
	}
	f.Close()
	return k, nil
}

// copyOut copies the regular file p of the image (links followed inside
// the root only) to the host file dst.
func copyOut(root *inroot.Root, p, dst string) error {
	in, err := root.OpenFile(p)
	if err != nil {
		return err
	}
	return writeOut(in, p, dst)
}

// writeOut copies in (the image's p) to the host file dst and closes in.
func writeOut(in io.ReadCloser, p, dst string) error {
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copying %s out of the image: %w", p, err)
	}
	return out.Close()
}

// gzipMagic starts a gzip-compressed kernel (an arm64 vmlinuz may be the
// kernel's Image compressed with gzip; bookworm's is the plain Image),
// which UEFI cannot load. The EFI program is the Image inside it (its EFI
// stub makes it one).
var gzipMagic = []byte{0x1f, 0x8b}

// openKernel opens the kernel p of the image, decompressed when it is
// gzip-compressed: what goes on the ESP.
func openKernel(root *inroot.Root, p string) (io.ReadCloser, error) {
	f, err := root.OpenFile(p)
	if err != nil {
		return nil, err
	}
	head := make([]byte, 2)
	if _, err := io.ReadFull(f, head); err != nil || !bytes.Equal(head, gzipMagic) {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			f.Close()
			return nil, err
		}
		return f, nil
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return nil, err
	}
	z, err := gzip.NewReader(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return struct {
		io.Reader
		io.Closer
	}{io.LimitReader(z, maxKernel), f}, nil
}

// maxKernel bounds a decompressed kernel (Debian's arm64 Image is ~35 MB).
const maxKernel = 512 << 20

// copyKernel copies the kernel p of the image to the host file dst, as
// the EFI program the boot loader loads (decompressed, see openKernel).
func copyKernel(root *inroot.Root, p, dst string) error {
	in, err := openKernel(root, p)
	if err != nil {
		return err
	}
	return writeOut(in, p, dst)
}

// peMachine reads the PE/COFF machine type of the EFI program r starts
// with; ok is false when it is no PE program.
func peMachine(r io.Reader) (machine uint16, ok bool) {
	head := make([]byte, 4096)
	n, _ := io.ReadFull(r, head)
	head = head[:n]
	if len(head) < 0x40 || string(head[:2]) != "MZ" {
		return 0, false
	}
	off := int(binary.LittleEndian.Uint32(head[0x3c:]))
	if off < 0 || off+6 > len(head) || string(head[off:off+4]) != "PE\x00\x00" {
		return 0, false
	}
	return binary.LittleEndian.Uint16(head[off+4:]), true
}

// peArch names the architecture of a PE machine type, for errors.
func peArch(m uint16) string {
	if a, ok := debarch.FromPE(m); ok {
		return a.Name
	}
	return fmt.Sprintf("machine type %#x", m)
}

// checkKernelArch refuses a kernel whose EFI stub is another
// architecture's than the disk's (an amd64 kernel in an arm64 image). A
// kernel that is no PE program is not checked here.
func checkKernelArch(root *inroot.Root, k bootKernel, arch string) error {
	in, err := openKernel(root, k.Vmlinuz)
	if err != nil {
		return err
	}
	defer in.Close()
	m, ok := peMachine(in)
	if a, _ := debarch.Lookup(arch); ok && m != a.PE {
		return fmt.Errorf("the kernel %s is an EFI program for %s, and the disk is for %s: install the %s kernel (%s) in the image", k.Vmlinuz, peArch(m), arch, arch, a.Disk.Kernel)
	}
	return nil
}
