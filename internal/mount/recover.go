package mount

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"time"

	"golang.org/x/sys/unix"
)

// Recovery says what undoing a killed build's leftovers did.
type Recovery struct {
	Killed    int
	Unmounted []string
	Lazy      []string
	Removed   []string // temporary files
}

// Empty says whether there was nothing to undo.
func (r Recovery) Empty() bool {
	return r.Killed == 0 && len(r.Unmounted) == 0 && len(r.Removed) == 0
}

// Recover undoes what the ledger st of an earlier, killed build lists, and
// nothing else: its host programs' process groups, the processes rooted in
// its chroot that started after it, its mounts and whatever was mounted on
// top of them, and its half-written files.
func Recover(st *State) (Recovery, error) {
	var r Recovery
	if Alive(st.Owner.PID, st.Owner.Start) {
		return r, fmt.Errorf("the build that left this state (pid %d) is still running", st.Owner.PID)
	}
	for _, g := range st.Groups {
		r.Killed += KillGroup(g.PID, g.Start)
	}
	if st.MountPath != "" {
		n, err := KillRootedUnderSince(st.MountPath, st.Owner.Start, 5*time.Second)
		r.Killed += n
		if err != nil {
			return r, err
		}
	}
	un, lazy, err := UnmountOwned(st.Mounts)
	r.Unmounted, r.Lazy = un, lazy
	if err != nil {
		return r, err
	}
	for _, f := range st.TempFiles {
		var s unix.Stat_t
		if unix.Lstat(f, &s) == nil && s.Mode&unix.S_IFMT == unix.S_IFREG && os.Remove(f) == nil {
			r.Removed = append(r.Removed, f)
		}
	}
	return r, nil
}

// Owned picks from the mount table the mounts that recs made (same mount
// point, and the recorded ID or, for one only intended, the file system
// type) and every mount stacked on or below them: what a build's chroot
// mounted inside its own mounts is the build's too. Children come first.
func Owned(table []Info, recs []MountRecord) []Info {
	byID := map[int]Info{}
	for _, m := range table {
		byID[m.ID] = m
	}
	ours := map[int]bool{}
	for _, rec := range recs {
		for _, m := range table {
			if m.MountPoint != rec.Target {
				continue
			}
			if rec.ID != 0 && m.ID != rec.ID {
				continue
			}
			if rec.ID == 0 && rec.FSType != "bind" && rec.FSType != "rbind" && m.FSType != rec.FSType {
				continue
			}
			ours[m.ID] = true
		}
	}
	for changed := true; changed; {
		changed = false
		for _, m := range table {
			if !ours[m.ID] && ours[m.ParentID] {
				ours[m.ID] = true
				changed = true
			}
		}
	}
	depth := func(m Info) int {
		d := 0
		for seen := 0; seen < len(table); seen++ {
			p, ok := byID[m.ParentID]
			if !ok || p.ID == m.ID {
				break
			}
			m = p
			d++
		}
		return d
	}
	var out []Info
	for i := len(table) - 1; i >= 0; i-- { // latest first among equals
		if ours[table[i].ID] {
			out = append(out, table[i])
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return depth(out[i]) > depth(out[j]) })
	return out
}

// UnmountOwned unmounts what Owned finds for recs, children first.
func UnmountOwned(recs []MountRecord) (unmounted, lazy []string, err error) {
	return unmountFound(func(table []Info) []Info { return Owned(table, recs) })
}

// UnmountBelow unmounts everything stacked on or below rec's mount, but not
// rec itself: what a build's chroot and hooks mounted inside its root.
func UnmountBelow(rec MountRecord) (unmounted, lazy []string, err error) {
	return unmountFound(func(table []Info) []Info {
		var out []Info
		for _, m := range Owned(table, []MountRecord{rec}) {
			if m.ID != rec.ID {
				out = append(out, m)
			}
		}
		return out
	})
}

func unmountFound(find func([]Info) []Info) (unmounted, lazy []string, err error) {
	for round := 0; round < 5; round++ {
		table, err := Table()
		if err != nil {
			return unmounted, lazy, err
		}
		ms := find(table)
		if len(ms) == 0 {
			return unmounted, lazy, nil
		}
		for _, m := range ms {
			if id, err := IDAt(m.MountPoint); err == nil && id != m.ID {
				// Something else is on top now; a later round gets it.
				continue
			}
			res, err := Unmount(m.MountPoint, 20, 250*time.Millisecond)
			if err != nil {
				return unmounted, lazy, err
			}
			unmounted = append(unmounted, m.MountPoint)
			if res.Lazy {
				lazy = append(lazy, m.MountPoint)
			}
		}
	}
	table, err := Table()
	if err != nil {
		return unmounted, lazy, err
	}
	if left := find(table); len(left) > 0 {
		return unmounted, lazy, fmt.Errorf("still mounted after five rounds: %s", left[0].MountPoint)
	}
	return unmounted, lazy, nil
}

// IDAt is the ID of the mount whose root or contents path is, resolved on
// the host with no symlink followed: a path an image changed into a link
// does not resolve.
func IDAt(path string) (int, error) {
	fd, err := unix.Openat2(unix.AT_FDCWD, path, &unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: unix.RESOLVE_NO_SYMLINKS})
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	var stx unix.Statx_t
	if err := unix.Statx(fd, "", unix.AT_EMPTY_PATH, unix.STATX_MNT_ID, &stx); err != nil {
		return 0, err
	}
	if stx.Mask&unix.STATX_MNT_ID == 0 {
		return 0, errors.New("the kernel gave no mount ID")
	}
	return int(stx.Mnt_id), nil
}

// ForeignUnder lists mounts at or below dir that recs did not make: what a
// build must leave alone (and not delete a tree through).
func ForeignUnder(dir string, recs []MountRecord) ([]Info, error) {
	ms, err := Under(dir)
	if err != nil {
		return nil, err
	}
	table, err := Table()
	if err != nil {
		return nil, err
	}
	ours := map[int]bool{}
	for _, m := range Owned(table, recs) {
		ours[m.ID] = true
	}
	var out []Info
	for _, m := range ms {
		if !ours[m.ID] {
			out = append(out, m)
		}
	}
	return out, nil
}

// IDOf is the ID of the mount a handle is on.
func IDOf(f *os.File) (int, error) {
	var stx unix.Statx_t
	if err := unix.Statx(int(f.Fd()), "", unix.AT_EMPTY_PATH, unix.STATX_MNT_ID, &stx); err != nil {
		return 0, err
	}
	if stx.Mask&unix.STATX_MNT_ID == 0 {
		return 0, errors.New("the kernel gave no mount ID")
	}
	return int(stx.Mnt_id), nil
}
