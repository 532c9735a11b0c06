package layer

import (
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// clamp makes trees made at different moments hash the same.
var clamp = time.Unix(1500000000, 0)

// gcAll collects everything that is not held: no image is kept, none is
// young.
func gcAll(t *testing.T, s *Store) *GCResult {
	t.Helper()
	res, err := s.GC(GCOptions{})
	must(t, err)
	return res
}

// TestGCRacingCommitOfAReusedLayer: a commit that finds its layer in the
// store already (left there by an image gc has since removed) returns it
// held, so a gc between the commit and the image that will use it does not
// delete it.
func TestGCRacingCommitOfAReusedLayer(t *testing.T) {
	s, err := Open(t.TempDir())
	must(t, err)
	files := map[string]string{"etc/app": "v1"}
	old, _ := commit(t, s, tree(t, files), CommitOptions{ClampTime: clamp})
	img, _ := putImage(t, s, ImageSpec{Layer: old, Created: time.Now()})
	must(t, s.RemoveImage(img.ID)) // the layer stays, used by nothing

	l, created, release, err := s.Commit(ctx, tree(t, files), CommitOptions{ClampTime: clamp})
	must(t, err)
	if created || l.DiffID != old.DiffID {
		t.Fatalf("not reused: %+v created=%v", l, created)
	}
	// The window: the build has its layer, not yet its image.
	res := gcAll(t, s)
	if len(res.Layers) != 0 || len(res.InUse) != 1 {
		t.Fatalf("gc between commit and image: %+v", res)
	}
	if _, err := os.Stat(filepath.Join(l.Dir, "etc/app")); err != nil {
		t.Fatalf("the committed layer lost its tree: %v", err)
	}
	child, _, releaseImage, err := s.PutImage(ImageSpec{Layer: l, Created: time.Unix(1700000000, 0)})
	must(t, err)
	release()
	// The image is held by its build too, also when source_date_epoch makes
	// it look years old.
	res = gcAll(t, s)
	if len(res.Images) != 0 || len(res.Layers) != 0 {
		t.Fatalf("gc while the build holds its image: %+v", res)
	}
	must(t, s.Complete(child))
	releaseImage()
	if res, _ := s.GC(GCOptions{MinAge: time.Hour}); len(res.Images) != 0 {
		t.Fatalf("an image stored a moment ago is not old, whatever its creation time: %+v", res)
	}
	if res := gcAll(t, s); len(res.Images) != 1 || len(res.Layers) != 1 {
		t.Fatalf("once released: %+v", res)
	}
}

// TestGCRacingCommitConcurrently: commits of the same content and gc run
// side by side; whatever a commit returns is there for as long as it holds
// it, and the image made from it is complete.
func TestGCRacingCommitConcurrently(t *testing.T) {
	s, err := Open(t.TempDir())
	must(t, err)
	gcErrs := make(chan error, 1)
	stop := inBackground(func() bool {
		if _, err := s.GC(GCOptions{}); err != nil {
			select {
			case gcErrs <- err:
			default:
			}
		}
		return true
	})
	for i := 0; i < 60; i++ {
		l, _, release, err := s.Commit(ctx, tree(t, map[string]string{"etc/app": "same"}), CommitOptions{ClampTime: clamp})
		must(t, err)
		img, _, releaseImage, err := s.PutImage(ImageSpec{Layer: l, Created: time.Now()})
		if err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		if err := s.Complete(img); err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		if _, err := os.Stat(filepath.Join(l.Dir, "etc/app")); err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		releaseImage()
		release()
	}
	stop()
	select {
	case err := <-gcErrs:
		t.Fatalf("gc: %v", err)
	default:
	}
}

// TestGCRacingChildMount: a child build holds its parent's layers before it
// mounts them. Either the hold fails (gc won: the parent is gone, nothing is
// mounted) or every lower dir is there for as long as it holds them.
func TestGCRacingChildMount(t *testing.T) {
	s, err := Open(t.TempDir())
	must(t, err)
	won, lost := 0, 0
	for i := 0; i < 40; i++ {
		base, _ := commit(t, s, tree(t, map[string]string{"bin/sh": "sh"}), CommitOptions{ClampTime: clamp})
		top, _ := commit(t, s, tree(t, map[string]string{"etc/app": "app"}), CommitOptions{ClampTime: clamp})
		parentBase, _ := putImage(t, s, ImageSpec{Layer: base, Created: time.Now()})
		parent, _ := putImage(t, s, ImageSpec{Parent: parentBase, Layer: top, Created: time.Now()})
		gcDone := make(chan error)
		start := make(chan struct{})
		go func() {
			<-start
			_, err := s.GC(GCOptions{})
			gcDone <- err
		}()
		close(start)
		release, err := s.Hold(parent)
		if errors.Is(err, ErrNotFound) {
			lost++
			must(t, <-gcDone)
			continue
		}
		must(t, err)
		won++
		must(t, <-gcDone)
		// gc has run in full while the child held: nothing of it went.
		lowers, err := s.LowerDirs(parent)
		must(t, err)
		for _, d := range lowers {
			if ents, err := os.ReadDir(d); err != nil || len(ents) == 0 {
				t.Fatalf("round %d: a held lower dir %s is gone or empty: %v", i, d, err)
			}
		}
		if res := gcAll(t, s); len(res.Layers) != 0 {
			t.Fatalf("round %d: gc deleted held layers %v", i, res.Layers)
		}
		release()
		gcAll(t, s)
	}
	t.Logf("the child held first %d times, gc won %d times", won, lost)
}

// TestTwoCommitsOfTheSameLayer: commits of identical trees at the same
// moment store the layer once; each gets it back held; nothing is left in
// tmp/ and every input dir is gone.
func TestTwoCommitsOfTheSameLayer(t *testing.T) {
	s, err := Open(t.TempDir())
	must(t, err)
	const n = 8
	for round := 0; round < 10; round++ {
		dirs := make([]string, n)
		for i := range dirs {
			dirs[i] = tree(t, map[string]string{"usr/lib/x": "same content", "etc/y": "y"})
		}
		type result struct {
			l       *Layer
			created bool
			release func()
			err     error
		}
		results := make([]result, n)
		var wg sync.WaitGroup
		for i := range dirs {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				l, created, release, err := s.Commit(ctx, dirs[i], CommitOptions{ClampTime: clamp})
				results[i] = result{l, created, release, err}
			}(i)
		}
		wg.Wait()
		createdN := 0
		for i, r := range results {
			must(t, r.err)
			if r.created {
				createdN++
			}
			if r.l.DiffID != results[0].l.DiffID {
				t.Fatal("the same content gave two diffIDs")
			}
			if _, err := os.Stat(dirs[i]); !os.IsNotExist(err) {
				t.Fatalf("input %s is still there", dirs[i])
			}
		}
		if round == 0 && createdN != 1 {
			t.Fatalf("%d commits say they created the layer", createdN)
		}
		if round > 0 && createdN != 0 {
			t.Fatalf("round %d: %d commits created a layer the store had", round, createdN)
		}
		// Held by all: gc leaves it.
		if res := gcAll(t, s); len(res.Layers) != 0 {
			t.Fatalf("gc took a held layer: %+v", res)
		}
		for _, r := range results {
			r.release()
		}
		if ents, _ := os.ReadDir(filepath.Join(s.Root(), layersDir)); len(ents) != 1 {
			t.Fatalf("layers/ holds %d entries", len(ents))
		}
		if ents, _ := os.ReadDir(filepath.Join(s.Root(), tmpDir)); len(ents) != 0 {
			t.Fatalf("tmp/ still holds %v", ents)
		}
	}
}

// TestBlobStagingSurvivesOpen: compressing a layer's blob stages it in tmp/
// under a staging lock, so other processes opening the store (a build, any
// strata gc, even a dry run) leave it alone while it is written.
func TestBlobStagingSurvivesOpen(t *testing.T) {
	s, err := Open(t.TempDir())
	must(t, err)
	dir := tree(t, nil)
	big := make([]byte, 8<<20)
	rand.Read(big)
	must(t, os.WriteFile(filepath.Join(dir, "big"), big, 0o644))
	l, _ := commit(t, s, dir, CommitOptions{ClampTime: clamp})
	done := make(chan error)
	go func() {
		_, err := s.Blob(ctx, l, Gzip)
		done <- err
	}()
	opens := 0
	for {
		select {
		case err := <-done:
			must(t, err)
			if opens == 0 {
				t.Fatal("no Open ran while the blob was written")
			}
			return
		default:
		}
		other, err := Open(s.Root())
		must(t, err)
		if _, err := other.GC(GCOptions{DryRun: true}); err != nil {
			t.Fatal(err)
		}
		opens++
	}
}

// TestStagingLockBeatsTheCleaner: a writer's staging dir is never removed
// by a cleaner, whichever of them comes first; a leftover whose writer died
// is.
func TestStagingLockBeatsTheCleaner(t *testing.T) {
	s, err := Open(t.TempDir())
	must(t, err)
	stop := inBackground(func() bool {
		if err := s.cleanTmp(); err != nil {
			t.Error(err)
			return false
		}
		return true
	})
	for i := 0; i < 200; i++ {
		staged, release, err := s.staging("layer-")
		must(t, err)
		if err := os.WriteFile(filepath.Join(staged, "f"), []byte("x"), 0o600); err != nil {
			t.Fatalf("round %d: the cleaner removed a held staging dir: %v", i, err)
		}
		os.RemoveAll(staged)
		release()
	}
	stop()
	// A writer that died: its lock file stays, unlocked.
	staged, _, err := s.staging("layer-")
	must(t, err)
	must(t, os.WriteFile(filepath.Join(staged, "half"), []byte("x"), 0o600))
	unlocked, err := os.Create(staged + ".lock.copy")
	must(t, err)
	unlocked.Close()
	os.Rename(staged+".lock.copy", staged+".lock") // a new inode nobody holds
	must(t, s.cleanTmp())
	if ents, _ := os.ReadDir(filepath.Join(s.Root(), tmpDir)); len(ents) != 0 {
		t.Fatalf("tmp/ still holds %v", ents)
	}
}

// inBackground calls fn over and over in a goroutine, until fn returns false
// or the returned stop is called; stop returns once fn has returned.
func inBackground(fn func() bool) (stop func()) {
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-quit:
				return
			default:
			}
			if !fn() {
				return
			}
		}
	}()
	return func() { close(quit); <-done }
}
