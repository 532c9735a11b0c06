package mount

import (
	"fmt"
	"time"
)

// Report says what a clean-up found and did.
type Report struct {
	Killed    int
	Unmounted []string
	Lazy      []string
}

// CleanUnder stops the processes rooted at or below dir and unmounts every
// mount there, deepest first. A killed earlier build leaves exactly this
// behind, and the next build with the same work dir calls it first.
func CleanUnder(dir string) (Report, error) {
	var r Report
	n, err := KillRootedUnder(dir, 5*time.Second)
	r.Killed = n
	if err != nil {
		return r, err
	}
	// Unmounting one mount can reveal none new, but a lazy one can leave
	// children visible for a moment; loop until the table is clean.
	for round := 0; round < 5; round++ {
		ms, err := Under(dir)
		if err != nil {
			return r, err
		}
		if len(ms) == 0 {
			return r, nil
		}
		for _, m := range ms {
			res, err := Unmount(m.MountPoint, 10, 200*time.Millisecond)
			if err != nil {
				return r, err
			}
			r.Unmounted = append(r.Unmounted, m.MountPoint)
			if res.Lazy {
				r.Lazy = append(r.Lazy, m.MountPoint)
			}
		}
	}
	return r, Verify(dir)
}

// Verify fails when anything is still mounted at or below dir.
func Verify(dir string) error {
	ms, err := Under(dir)
	if err != nil {
		return err
	}
	if len(ms) > 0 {
		var pts []string
		for _, m := range ms {
			pts = append(pts, m.MountPoint)
		}
		return fmt.Errorf("still mounted under %s: %v", dir, pts)
	}
	return nil
}
