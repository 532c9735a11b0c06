package storeroot

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestResolve(t *testing.T) {
	t.Setenv("STRATA_HOME", "")
	if got, err := Resolve(""); err != nil || got != Default {
		t.Errorf("no store_dir, no STRATA_HOME: %q %v, want %s", got, err, Default)
	}
	t.Setenv("STRATA_HOME", "/srv/strata-home")
	if got, _ := Resolve(""); got != "/srv/strata-home" {
		t.Errorf("STRATA_HOME: %q", got)
	}
	if got, _ := Resolve("/srv/explicit"); got != "/srv/explicit" {
		t.Errorf("store_dir must win over STRATA_HOME: %q", got)
	}
	// Relative paths, from either, become absolute against the working dir.
	wd, _ := os.Getwd()
	t.Setenv("STRATA_HOME", "rel/home")
	if got, _ := Resolve(""); got != filepath.Join(wd, "rel/home") {
		t.Errorf("relative STRATA_HOME: %q", got)
	}
	if got, _ := Resolve("./x/../store"); got != filepath.Join(wd, "store") {
		t.Errorf("relative store_dir: %q", got)
	}

	l := Layout{Root: "/s"}
	for got, want := range map[string]string{
		l.Layers(): "/s/layers", l.PackageCache(): "/s/cache/apt", l.Work(): "/s/work", l.WorkDir("app"): "/s/work/app",
		l.CatalogFile(): "/s/catalog.db", l.CatalogURL(): "sqlite:///s/catalog.db",
	} {
		if got != want {
			t.Errorf("layout: %s, want %s", got, want)
		}
	}
}

// private is a directory that passes CheckPrivate: root's, 0700, below the
// test's temporary dir (whose parents are root's; /tmp is sticky).
func private(t *testing.T) string {
	t.Helper()
	d := filepath.Join(t.TempDir(), "store")
	if err := Ensure(d); err != nil {
		t.Fatalf("Ensure(%s): %v", d, err)
	}
	return d
}

func TestEnsureMakesPrivateDirs(t *testing.T) {
	d := filepath.Join(t.TempDir(), "a", "b", "store")
	if err := Ensure(d); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{d, filepath.Dir(d), filepath.Dir(filepath.Dir(d))} {
		fi, err := os.Stat(p)
		if err != nil || fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s: %v %v, want no access for group and others", p, fi.Mode(), err)
		}
	}
	// Ensure on an existing private dir is fine; on an open one it fails.
	if err := Ensure(d); err != nil {
		t.Error(err)
	}
	os.Chmod(d, 0o777)
	if err := Ensure(d); err == nil {
		t.Error("Ensure accepted a world-writable existing dir")
	}
}

func TestCheckPrivate(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give files to another user")
	}
	const other = 65534
	cases := []struct {
		name  string
		setup func(t *testing.T) string
		want  []string // in the error; nil: accepted
	}{
		{"private", private, nil},
		{"readable by others", func(t *testing.T) string {
			d := private(t)
			os.Chmod(d, 0o755)
			return d
		}, nil},
		{"group-writable", func(t *testing.T) string {
			d := private(t)
			os.Chmod(d, 0o770)
			return d
		}, []string{"writable by other users", "chmod go-w"}},
		{"world-writable", func(t *testing.T) string {
			d := private(t)
			os.Chmod(d, os.ModeSticky|0o777)
			return d
		}, []string{"writable by other users", "mode 1777"}},
		{"owned by another user", func(t *testing.T) string {
			d := private(t)
			os.Chown(d, other, other)
			return d
		}, []string{"owned by uid 65534", "chown"}},
		{"a symlink to a private dir", func(t *testing.T) string {
			d := private(t)
			l := d + "-link"
			os.Symlink(d, l)
			return l
		}, []string{"not a directory", "symlink"}},
		{"a file", func(t *testing.T) string {
			p := filepath.Join(t.TempDir(), "file")
			os.WriteFile(p, nil, 0o600)
			return p
		}, []string{"not a directory"}},
		{"missing", func(t *testing.T) string { return filepath.Join(t.TempDir(), "nope") }, []string{"no such file"}},
		{"a parent owned by another user", func(t *testing.T) string {
			d := private(t)
			os.Chown(filepath.Dir(d), other, other)
			return d
		}, []string{"above", "owned by uid 65534", "parents belong to root"}},
		{"a world-writable parent without the sticky bit", func(t *testing.T) string {
			d := private(t)
			os.Chmod(filepath.Dir(d), 0o777)
			return d
		}, []string{"above", "writable by every user", "chmod o-w"}},
		{"a world-writable sticky parent (like /tmp)", func(t *testing.T) string {
			d := private(t)
			os.Chmod(filepath.Dir(d), os.ModeSticky|0o777)
			return d
		}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := CheckPrivate(c.setup(t))
			switch {
			case c.want == nil && err != nil:
				t.Errorf("refused: %v", err)
			case c.want != nil && err == nil:
				t.Error("accepted")
			case err != nil:
				for _, w := range c.want {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("the error %q lacks %q", err, w)
					}
				}
			}
		})
	}
}

// CheckAncestors is for a path that may not exist yet: parents still to be
// made are skipped, the existing ones are checked.
func TestCheckAncestorsOfAPathToBeMade(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give files to another user")
	}
	d := private(t)
	future := filepath.Join(d, "not", "yet", "store")
	if err := CheckAncestors(future); err != nil {
		t.Errorf("missing parents below a private dir: %v", err)
	}
	os.Chown(d, 65534, 65534)
	if err := CheckAncestors(future); err == nil || !strings.Contains(err.Error(), d) {
		t.Errorf("an existing parent owned by another user: %v", err)
	}
}
