package export

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/strata-build/packer-plugin-strata/internal/inroot"
)

// KernelPackage is what a template installs when an image has no kernel.
const KernelPackage = "linux-image-cloud-amd64"

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
// of it, and what a link leads to must be a regular file.
func findKernel(root *inroot.Root, want string) (bootKernel, error) {
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
		return bootKernel{}, fmt.Errorf("the image has no kernel (no /boot/vmlinuz-*): a disk boots the image's own kernel; install one in the template, such as the %s package with strata-packages (install = [%q])", KernelPackage, KernelPackage)
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
