package mount

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
)

// LedgerName is the ledger's file in a work dir.
const LedgerName = "state.json"

// Proc names one process for good: its PID and its start time.
type Proc struct {
	PID   int    `json:"pid"`
	Start uint64 `json:"start"`
}

// MountRecord is one mount a build made (or was about to make).
type MountRecord struct {
	// Target is the host path the mount landed on (resolved, no links).
	Target string `json:"target"`
	FSType string `json:"fstype"`
	// ID is the kernel's mount ID once mounted; 0 while only intended.
	ID int `json:"id,omitempty"`
}

// State is what a ledger records.
type State struct {
	Owner Proc `json:"owner"`
	// MountPath is the chroot's root: processes rooted below it are the build's.
	MountPath string        `json:"mount_path,omitempty"`
	Mounts    []MountRecord `json:"mounts"`
	Groups    []Proc        `json:"groups"`
	// TempFiles are files being written (outputs) that are not complete.
	TempFiles []string `json:"temp_files"`
}

// Ledger is a work dir's record of what its build mounted and started,
// written ahead of every change (temporary file, fsync, rename). A killed
// build leaves it behind, and the next build with that work dir undoes
// exactly what it lists: never a mount or process of anyone else.
type Ledger struct {
	path string
	mu   sync.Mutex
	st   State
}

// ReadLedger reads the ledger an earlier build left in dir; nil when none.
func ReadLedger(dir string) (*State, error) {
	b, err := os.ReadFile(filepath.Join(dir, LedgerName))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, LedgerName), err)
	}
	return &st, nil
}

// NewLedger starts a fresh ledger in dir for this process.
func NewLedger(dir string) (*Ledger, error) {
	start, err := StartTime(os.Getpid())
	if err != nil {
		return nil, err
	}
	l := &Ledger{path: filepath.Join(dir, LedgerName), st: State{Owner: Proc{PID: os.Getpid(), Start: start}}}
	return l, l.save()
}

// Owner is the process the ledger belongs to.
func (l *Ledger) Owner() Proc { return l.st.Owner }

// State is a copy of what the ledger holds.
func (l *Ledger) State() State {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.st
	st.Mounts = slices.Clone(st.Mounts)
	st.Groups = slices.Clone(st.Groups)
	st.TempFiles = slices.Clone(st.TempFiles)
	return st
}

func (l *Ledger) update(fn func(*State)) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	fn(&l.st)
	return l.save()
}

func (l *Ledger) save() error {
	b, err := json.MarshalIndent(l.st, "", "  ")
	if err != nil {
		return err
	}
	tmp := l.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, l.path)
	}
	return err
}

// SetMountPath records the chroot's root.
func (l *Ledger) SetMountPath(p string) error {
	return l.update(func(s *State) { s.MountPath = p })
}

// Intend records a mount about to be made at target.
func (l *Ledger) Intend(target, fstype string) error {
	return l.update(func(s *State) { s.Mounts = append(s.Mounts, MountRecord{Target: target, FSType: fstype}) })
}

// Mounted records the ID of the mount made at target.
func (l *Ledger) Mounted(target string, id int) error {
	return l.update(func(s *State) {
		for i := len(s.Mounts) - 1; i >= 0; i-- {
			if s.Mounts[i].Target == target && s.Mounts[i].ID == 0 {
				s.Mounts[i].ID = id
				return
			}
		}
	})
}

// Unmounted forgets the newest record of target.
func (l *Ledger) Unmounted(target string) error {
	return l.update(func(s *State) {
		for i := len(s.Mounts) - 1; i >= 0; i-- {
			if s.Mounts[i].Target == target {
				s.Mounts = slices.Delete(s.Mounts, i, i+1)
				return
			}
		}
	})
}

// GroupStarted and GroupEnded record host programs' process groups.
func (l *Ledger) GroupStarted(pgid int, start uint64) {
	_ = l.update(func(s *State) { s.Groups = append(s.Groups, Proc{PID: pgid, Start: start}) })
}

func (l *Ledger) GroupEnded(pgid int) {
	_ = l.update(func(s *State) {
		s.Groups = slices.DeleteFunc(s.Groups, func(p Proc) bool { return p.PID == pgid })
	})
}

// AddTemp and RemoveTemp record files being written.
func (l *Ledger) AddTemp(p string) error {
	return l.update(func(s *State) { s.TempFiles = append(s.TempFiles, p) })
}

func (l *Ledger) RemoveTemp(p string) error {
	return l.update(func(s *State) { s.TempFiles = slices.DeleteFunc(s.TempFiles, func(t string) bool { return t == p }) })
}

// Close removes the ledger: the build ended and left nothing to undo.
func (l *Ledger) Close() error {
	err := os.Remove(l.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}
