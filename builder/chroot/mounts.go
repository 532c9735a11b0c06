package chroot

import (
	"fmt"
	"os"
	"path"

	"golang.org/x/sys/unix"

	"github.com/strata-build/packer-plugin-strata/internal/inroot"
	"github.com/strata-build/packer-plugin-strata/internal/mount"
)

// plannedMount is one mount of the plan. Its Spec.Target is a path inside
// the image, resolved only when the mount is made.
type plannedMount struct {
	mount.Spec
	// File: the target is a file (a bind mount of a file).
	File bool
	// SourceInImage: Source is a path inside the image too (the new devpts'
	// ptmx), resolved there.
	SourceInImage bool
	// Own: one of the builder's own mounts, which must land exactly on its
	// path; any other mount may not land on or under them.
	Own bool
}

// planMounts lists the mounts of a chroot in the order they are made: the
// builder's own (proc, sys, dev, dev/pts, dev/ptmx, dev/shm, run), then the
// extra ones. Unmounting goes in reverse.
func planMounts(extra []MountConfig) []plannedMount {
	plan := []plannedMount{
		{Spec: mount.Spec{FSType: "proc", Source: "proc", Target: "/proc", Options: "nosuid,nodev,noexec"}, Own: true},
		{Spec: mount.Spec{FSType: "sysfs", Source: "sysfs", Target: "/sys", Options: "ro,nosuid,nodev,noexec"}, Own: true},
		// The host's device nodes, not recursively: the chroot gets its own
		// pts, shm and run below instead of the host's. Read-only, so nothing
		// in the image (nor a stray recursive delete of the work dir) can
		// create or remove a node in the host's /dev; the devices themselves
		// stay writable, as a read-only mount does not apply to device I/O.
		{Spec: mount.Spec{FSType: "bind", Source: "/dev", Target: "/dev", Options: "ro,nosuid,noexec"}, Own: true},
		{Spec: mount.Spec{FSType: "devpts", Source: "devpts", Target: "/dev/pts", Options: "newinstance,ptmxmode=0666,mode=0620,gid=5,nosuid,noexec"}, Own: true},
		// The new devpts instance's ptmx, so ptys opened in the chroot live there.
		{Spec: mount.Spec{FSType: "bind", Source: "/dev/pts/ptmx", Target: "/dev/ptmx"}, File: true, SourceInImage: true, Own: true},
		{Spec: mount.Spec{FSType: "tmpfs", Source: "shm", Target: "/dev/shm", Options: "nosuid,nodev,mode=1777"}, Own: true},
		{Spec: mount.Spec{FSType: "tmpfs", Source: "run", Target: "/run", Options: "nosuid,nodev,mode=0755"}, Own: true},
	}
	for _, m := range extra {
		file := false
		if m.Type == "bind" || m.Type == "rbind" {
			if fi, err := os.Stat(m.Source); err == nil && !fi.IsDir() {
				file = true
			}
		}
		plan = append(plan, plannedMount{Spec: mount.Spec{FSType: m.Type, Source: m.Source, Target: path.Clean(m.Target), Options: m.Options}, File: file})
	}
	return plan
}

// madeMount is a mount made in the image, for the undo.
type madeMount struct {
	mount.MountRecord
	InImage string
	// created are mount points the builder made for it (outermost first),
	// removed after the unmount so the image is exactly as it was.
	created []string
	times   *inroot.DirTimes // of the first created path's parent
}

// mountInImage makes one planned mount inside root: the target is resolved
// (and created when missing) inside the image at this moment, the mount is
// made on that handle, and it must land inside the root, and on or under
// the builder's own mounts only where it is one of them.
func mountInImage(h host, root *inroot.Root, ledger *mount.Ledger, m plannedMount) (*madeMount, error) {
	made := &madeMount{InImage: m.Target}
	var times *inroot.DirTimes
	if !root.Exists(m.Target) {
		if t, err := root.SaveDirTimes(path.Dir(m.Target)); err == nil {
			times = t
		}
	}
	var at *os.File
	var err error
	if m.File {
		at, made.created, err = ensureFile(root, m.Target)
	} else {
		at, made.created, err = root.MkdirAll(m.Target, 0o755)
	}
	if err != nil {
		return nil, err
	}
	defer at.Close()
	if len(made.created) > 0 {
		made.times = times
	}
	host, err := root.HostPath(at)
	if err != nil {
		return made, fmt.Errorf("%s: %w", m.Target, err)
	}
	if err := checkLanding(root, m, at, host); err != nil {
		return made, err
	}
	spec := m.Spec
	if m.SourceInImage {
		src, err := root.OpenPath(m.Source)
		if err != nil {
			return made, err
		}
		defer src.Close()
		spec.Source = inroot.FdPath(src)
	}
	if err := ledger.Intend(host, m.FSType); err != nil {
		return made, err
	}
	if err := h.MountAt(spec, at, func() (*os.File, error) { return root.OpenPath(m.Target) }); err != nil {
		ledger.Unmounted(host)
		return made, err
	}
	top, err := root.OpenPath(m.Target)
	if err != nil {
		return made, err
	}
	defer top.Close()
	id, err := h.MountIDOf(top)
	if err != nil {
		return made, err
	}
	if err := ledger.Mounted(host, id); err != nil {
		return made, err
	}
	made.MountRecord = mount.MountRecord{Target: host, FSType: m.FSType, ID: id}
	return made, nil
}

// checkLanding refuses a mount point outside the root, and one on or under
// the builder's own mounts unless it is exactly that mount.
func checkLanding(root *inroot.Root, m plannedMount, at *os.File, host string) error {
	inImage := root.InImage(host)
	if m.Own {
		_, err := root.HostPathAt(at, m.Target)
		return err
	}
	if d := underBuilderMount(inImage); d != "" {
		return fmt.Errorf("chroot_mounts: %s resolves to %s in the image, on the builder's own %s mount; refusing to mount there", m.Target, inImage, d)
	}
	return nil
}

// ensureFile returns a handle to the file target, creating it (exclusively,
// never through a link) when missing.
func ensureFile(root *inroot.Root, target string) (*os.File, []string, error) {
	if h, err := root.OpenPath(target); err == nil {
		return h, nil, nil
	}
	dirH, created, err := root.MkdirAll(path.Dir(target), 0o755)
	if err != nil {
		return nil, nil, err
	}
	defer dirH.Close()
	fd, err := unix.Openat(int(dirH.Fd()), path.Base(target), unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_WRONLY|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return nil, nil, fmt.Errorf("creating mount point %s: %w", target, err)
	}
	unix.Close(fd)
	h, err := root.OpenPath(target)
	return h, append(created, target), err
}

// removeCreated removes the mount points a mount created, innermost first,
// and puts their parent's times back.
func removeCreated(root *inroot.Root, m *madeMount) error {
	for i := len(m.created) - 1; i >= 0; i-- {
		if err := root.Remove(m.created[i]); err != nil {
			return err
		}
	}
	return root.RestoreDirTimes(m.times)
}
