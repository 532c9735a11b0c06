package mount

// Recorder is where a mount is written down before it is made, so that
// whatever a killed process leaves mounted is found and undone by the next
// one (a work dir's *Ledger is one).
type Recorder interface {
	Intend(target, fstype string) error
	Mounted(target string, id int) error
	Unmounted(target string) error
}

// MountRecorded mounts spec, written down in rec first (nil: nowhere), and
// returns the record UnmountRecorded takes back.
func MountRecorded(rec Recorder, spec Spec) (*MountRecord, error) {
	if rec != nil {
		if err := rec.Intend(spec.Target, spec.FSType); err != nil {
			return nil, err
		}
	}
	if err := Mount(spec); err != nil {
		if rec != nil {
			rec.Unmounted(spec.Target)
		}
		return nil, err
	}
	id, err := IDAt(spec.Target)
	if err != nil {
		return nil, err
	}
	if rec != nil {
		if err := rec.Mounted(spec.Target, id); err != nil {
			return nil, err
		}
	}
	return &MountRecord{Target: spec.Target, FSType: spec.FSType, ID: id}, nil
}

// UnmountRecorded unmounts recs and everything stacked on them, children
// first, and forgets them in rec (if any) once they are gone. lazy lists
// the mounts that stayed busy and were detached lazily.
func UnmountRecorded(rec Recorder, recs []MountRecord) (lazy []string, err error) {
	_, lazy, err = UnmountOwned(recs)
	if err != nil {
		return lazy, err
	}
	if rec != nil {
		for _, r := range recs {
			if err := rec.Unmounted(r.Target); err != nil {
				return lazy, err
			}
		}
	}
	return lazy, nil
}
