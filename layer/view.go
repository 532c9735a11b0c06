package layer

import (
	"fmt"

	"github.com/strata-build/packer-plugin-strata/internal/mount"
)

// View is an image's whole tree mounted read-only: the one layer bound
// read-only, or an overlay of its layers. Exports, boot disks and pushes
// read an image through it; nothing can write through it.
type View struct {
	// Path is where the tree is mounted.
	Path string
	rec  *mount.MountRecord
	log  mount.Recorder
}

// MountView mounts img read-only at target (an existing empty directory),
// recorded in rec first when rec is not nil. The caller holds img (Hold) for
// as long as the view is mounted, and calls Unmount.
func (s *Store) MountView(img *Image, target string, rec mount.Recorder) (*View, error) {
	lowers, err := s.LowerDirs(img)
	if err != nil {
		return nil, err
	}
	if len(lowers) == 0 {
		return nil, fmt.Errorf("image %s has no layers", img.ID)
	}
	spec := mount.Spec{FSType: "bind", Source: lowers[0], Target: target, Options: "ro"}
	if len(lowers) > 1 {
		spec = mount.Spec{FSType: "overlay", Source: "overlay", Target: target, Options: "ro," + OverlayOptions(lowers, "", "")}
	}
	r, err := mount.MountRecorded(rec, spec)
	if err != nil {
		return nil, fmt.Errorf("mounting image %s read-only at %s: %w", img.ID, target, err)
	}
	return &View{Path: target, rec: r, log: rec}, nil
}

// Unmount takes the view down (and whatever was mounted on it). It is done
// only once it succeeded, so a failed Unmount can be tried again; lazy lists
// mounts that stayed busy and were detached lazily.
func (v *View) Unmount() (lazy []string, err error) {
	if v == nil || v.rec == nil {
		return nil, nil
	}
	if lazy, err = mount.UnmountRecorded(v.log, []mount.MountRecord{*v.rec}); err != nil {
		return lazy, fmt.Errorf("unmounting the image view at %s: %w", v.Path, err)
	}
	v.rec = nil
	return lazy, nil
}
