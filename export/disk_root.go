package export

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/strata-build/packer-plugin-strata/internal/inroot"
)

// overlayDirsUnit makes the upper and work directories of a squashfs root's
// writable overlays on /run (a tmpfs) before the fstab mounts them.
const overlayDirsUnit = `[Unit]
Description=Writable overlay directories for the read-only root (strata)
DefaultDependencies=no
Before=local-fs-pre.target
RequiresMountsFor=/run

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/mkdir -p /run/strata-overlay/etc/upper /run/strata-overlay/etc/work /run/strata-overlay/var/upper /run/strata-overlay/var/work
`

// overlayDirsUnitName is where the unit goes in a squashfs root.
const overlayDirsUnitName = "etc/systemd/system/strata-overlay-dirs.service"

// fstab is the disk root's /etc/fstab: the root by its partition UUID and,
// for a read-only squashfs root, /etc and /var as overlays whose changes
// live in memory until the next boot.
func (d *diskPlan) fstab() string {
	var b strings.Builder
	b.WriteString("# Written by strata for this disk image: the root file system by its partition UUID.\n")
	if d.opt.RootFilesystem == RootSquashfs {
		fmt.Fprintf(&b, "PARTUUID=%s / squashfs ro 0 0\n", d.rootUUID)
		b.WriteString("# The root is read-only: /etc and /var are writable overlays on memory (lost at shutdown).\n")
		for _, dir := range []string{"etc", "var"} {
			fmt.Fprintf(&b, "overlay /%s overlay lowerdir=/%s,upperdir=/run/strata-overlay/%s/upper,workdir=/run/strata-overlay/%s/work,x-systemd.requires=strata-overlay-dirs.service 0 0\n", dir, dir, dir, dir)
		}
		return b.String()
	}
	fmt.Fprintf(&b, "PARTUUID=%s / ext4 defaults 0 1\n", d.rootUUID)
	return b.String()
}

// rootPartition makes the root partition's file system of the tree in the
// file img, with the disk's own /etc/fstab (only there: never in the tree
// or its layers), and returns its size. An ext4 root fills size when it is
// not zero.
func (e *exporter) rootPartition(root *inroot.Root, img string, d *diskPlan, size int64) (int64, error) {
	st, err := root.Lstat("/etc")
	if err != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return 0, fmt.Errorf("the image's /etc is not a directory: a disk needs one for its fstab")
	}
	fstab := filepath.Join(filepath.Dir(img), "fstab")
	if err := os.WriteFile(fstab, []byte(d.fstab()), 0o644); err != nil {
		return 0, err
	}
	if d.opt.RootFilesystem == RootSquashfs {
		return e.squashfsRoot(root, img, d, fstab)
	}
	got, err := e.mkExt4(img, ext4Spec{label: "root", free: d.opt.FreeSpace, size: size, inodeRatio: e.opt.Ext4InodeRatio,
		uuid: d.fsUUID, hashSeed: d.hashSeed, when: d.when})
	if err != nil {
		return 0, err
	}
	if err := e.ext4WriteFstab(img, fstab, d); err != nil {
		return 0, err
	}
	return got, nil
}

// ext4WriteFstab replaces /etc/fstab in the ext4 image with debugfs (the
// file system is a file; nothing is mounted), stamped with the disk's time,
// and reads it back.
func (e *exporter) ext4WriteFstab(img, fstab string, d *diskPlan) error {
	t := d.when.Format("20060102150405")
	script := strings.Join([]string{
		"set_current_time " + t,
		"cd /etc",
		"rm fstab",
		"write " + fstab + " fstab",
		"sif fstab mode 0100644",
		"sif fstab uid 0",
		"sif fstab gid 0",
		"sif fstab mtime " + t,
		"sif fstab atime " + t,
		"sif fstab ctime " + t,
		"sif fstab crtime " + t,
	}, "\n") + "\n"
	cmdFile := filepath.Join(filepath.Dir(img), "debugfs.cmd")
	if err := os.WriteFile(cmdFile, []byte(script), 0o600); err != nil {
		return err
	}
	env := []string{"E2FSPROGS_FAKE_TIME=" + strconv.FormatInt(d.when.Unix(), 10)}
	if err := e.runEnv(env, "debugfs", "-w", "-f", cmdFile, img); err != nil {
		return fmt.Errorf("writing /etc/fstab: %w", err)
	}
	// debugfs goes on after a failed command: what counts is what is there.
	cmd := e.command(env, "debugfs", "-R", "cat /etc/fstab", img)
	out, err := cmd.Output()
	if err != nil || string(out) != d.fstab() {
		return fmt.Errorf("writing /etc/fstab with debugfs: it reads back as %q (%v)", out, err)
	}
	return nil
}

// squashfsRoot makes the squashfs root with the disk's fstab and the unit
// its overlays need, added as mksquashfs pseudo files (the tree is only
// read), every time fixed to the disk's.
func (e *exporter) squashfsRoot(root *inroot.Root, img string, d *diskPlan, fstab string) (int64, error) {
	unit := filepath.Join(filepath.Dir(img), "strata-overlay-dirs.service")
	if err := os.WriteFile(unit, []byte(overlayDirsUnit), 0o644); err != nil {
		return 0, err
	}
	for _, p := range []string{fstab, unit} {
		if strings.ContainsAny(p, "'\n") {
			return 0, fmt.Errorf("%s: the output directory's path must not hold a quote or a newline", p)
		}
	}
	t := strconv.FormatInt(d.when.Unix(), 10)
	args := []string{"-mkfs-time", t}
	for _, dir := range []string{"etc/systemd", "etc/systemd/system"} {
		if !root.Exists("/" + dir) {
			args = append(args, "-p", dir+" D "+t+" 755 0 0")
		}
	}
	args = append(args,
		"-p", "etc/fstab F "+t+" 644 0 0 cat '"+fstab+"'",
		"-p", overlayDirsUnitName+" F "+t+" 644 0 0 cat '"+unit+"'")
	// -e takes every argument after it: last.
	var exclude []string
	for _, p := range []string{"etc/fstab", overlayDirsUnitName} {
		if _, err := root.Lstat("/" + p); err == nil {
			exclude = append(exclude, p)
		}
	}
	if len(exclude) > 0 {
		args = append(append(args, "-e"), exclude...)
	}
	if err := e.mkSquashfs(img, args, nil); err != nil {
		return 0, err
	}
	fi, err := os.Stat(img)
	if err != nil {
		return 0, err
	}
	return alignUp(fi.Size(), gptAlign), nil
}
