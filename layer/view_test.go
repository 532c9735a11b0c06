package layer

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/strata-build/packer-plugin-strata/internal/mount"
)

// recorder is a mount.Recorder that remembers what it was told.
type recorder struct{ events []string }

func (r *recorder) Intend(t, fs string) error     { r.events = append(r.events, "intend "+fs); return nil }
func (r *recorder) Mounted(t string, _ int) error { r.events = append(r.events, "mounted"); return nil }
func (r *recorder) Unmounted(t string) error      { r.events = append(r.events, "unmounted"); return nil }

func TestMountViewIsReadOnlyAndUnmountsOnce(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting needs root")
	}
	s, err := Open(t.TempDir())
	must(t, err)
	base, _ := commit(t, s, tree(t, map[string]string{"a": "base", "b": "base"}), CommitOptions{})
	top, _ := commit(t, s, tree(t, map[string]string{"b": "top"}), CommitOptions{})
	baseImg, _ := putImage(t, s, ImageSpec{Layer: base, Created: time.Unix(1, 0)})
	child, _ := putImage(t, s, ImageSpec{Parent: baseImg, Layer: top, Created: time.Unix(2, 0)})

	for _, c := range []struct {
		name   string
		img    *Image
		fstype string
		want   map[string]string
	}{
		{"one layer: a read-only bind", baseImg, "bind", map[string]string{"a": "base", "b": "base"}},
		{"two layers: a read-only overlay", child, "overlay", map[string]string{"a": "base", "b": "top"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			target := t.TempDir()
			rec := &recorder{}
			v, err := s.MountView(c.img, target, rec)
			must(t, err)
			defer v.Unmount()
			for name, want := range c.want {
				got, err := os.ReadFile(filepath.Join(target, name))
				if err != nil || string(got) != want {
					t.Fatalf("%s in the view: %q, %v; want %q", name, got, err, want)
				}
			}
			if err := os.WriteFile(filepath.Join(target, "new"), nil, 0o644); !errors.Is(err, unix.EROFS) {
				t.Fatalf("writing through the view: %v, want EROFS", err)
			}
			if _, err := v.Unmount(); err != nil {
				t.Fatal(err)
			}
			if mounted, _ := mount.Under(target); len(mounted) != 0 {
				t.Fatalf("still mounted after Unmount: %+v", mounted)
			}
			if _, err := v.Unmount(); err != nil { // done already: nothing to do
				t.Fatalf("second Unmount: %v", err)
			}
			want := []string{"intend " + c.fstype, "mounted", "unmounted"}
			if len(rec.events) != len(want) {
				t.Fatalf("recorded %v, want %v", rec.events, want)
			}
			for i := range want {
				if rec.events[i] != want[i] {
					t.Fatalf("recorded %v, want %v", rec.events, want)
				}
			}
		})
	}
}
