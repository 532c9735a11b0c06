package chroot

import (
	"fmt"
	"os"
	"path/filepath"

	securejoin "github.com/cyphar/filepath-securejoin"

	"github.com/strata-build/packer-plugin-strata/internal/mount"
)

// plannedMount is one mount of the plan, with the path it takes inside the image.
type plannedMount struct {
	mount.Spec
	InImage string // absolute path inside the image, for messages
	File    bool   // the target is a file (a bind mount of a file)
}

// planMounts lists the mounts of a chroot at root in the order they are made:
// the builder's own (proc, sys, dev, dev/pts, dev/shm, run), then the extra
// ones. Targets are resolved inside root so an image's symlinks never point
// a mount at the host. Unmounting goes in reverse.
func planMounts(root string, extra []MountConfig) ([]plannedMount, error) {
	base := []struct {
		typ, src, target, opts string
	}{
		{"proc", "proc", "/proc", "nosuid,nodev,noexec"},
		{"sysfs", "sysfs", "/sys", "ro,nosuid,nodev,noexec"},
		// The host's device nodes, not recursively: the chroot gets its own
		// pts, shm and run below instead of the host's. Read-only, so nothing
		// in the image (nor a stray recursive delete of the work dir) can
		// create or remove a node in the host's /dev; the devices themselves
		// stay writable, as a read-only mount does not apply to device I/O.
		{"bind", "/dev", "/dev", "ro,nosuid,noexec"},
		{"devpts", "devpts", "/dev/pts", "newinstance,ptmxmode=0666,mode=0620,gid=5,nosuid,noexec"},
		{"bind", "/dev/pts/ptmx", "/dev/ptmx", ""},
		{"tmpfs", "shm", "/dev/shm", "nosuid,nodev,mode=1777"},
		{"tmpfs", "run", "/run", "nosuid,nodev,mode=0755"},
	}
	var plan []plannedMount
	for _, b := range base {
		target, err := securejoin.SecureJoin(root, b.target)
		if err != nil {
			return nil, fmt.Errorf("resolving %s in the image: %w", b.target, err)
		}
		src := b.src
		file := false
		if b.target == "/dev/ptmx" {
			// The new devpts instance's ptmx, so ptys opened in the chroot live there.
			src = filepath.Join(root, "dev/pts/ptmx")
			file = true
		}
		plan = append(plan, plannedMount{Spec: mount.Spec{FSType: b.typ, Source: src, Target: target, Options: b.opts}, InImage: b.target, File: file})
	}
	for _, m := range extra {
		target, err := securejoin.SecureJoin(root, m.Target)
		if err != nil {
			return nil, fmt.Errorf("chroot_mounts: resolving %s in the image: %w", m.Target, err)
		}
		file := false
		if m.Type == "bind" || m.Type == "rbind" {
			if fi, err := os.Stat(m.Source); err == nil && !fi.IsDir() {
				file = true
			}
		}
		plan = append(plan, plannedMount{Spec: mount.Spec{FSType: m.Type, Source: m.Source, Target: target, Options: m.Options}, InImage: m.Target, File: file})
	}
	return plan, nil
}
