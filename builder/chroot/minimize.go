package chroot

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/strata-build/packer-plugin-strata/internal/bytesize"
	"github.com/strata-build/packer-plugin-strata/internal/treesize"
)

// What minimize removes, by category, as dpkg path-exclude globs too.
const (
	docDir    = "/usr/share/doc"
	localeDir = "/usr/share/locale"
	gconvGlob = "/usr/lib/*/gconv"
)

// minimizeReport says what minimizing removed, by category.
type minimizeReport struct {
	Bytes   map[string]int64
	Entries map[string]int
}

func (r *minimizeReport) add(cat string, n int64) {
	r.Bytes[cat] += n
	r.Entries[cat]++
}

// catLogs is the category of the logs minimize empties (and keeps).
const catLogs = "logs"

// removed sums what minimize took out of the tree: every category's
// bytes, and its entries but the emptied logs', which stay.
func (r *minimizeReport) removed() (bytes int64, entries int) {
	for c, n := range r.Bytes {
		bytes += n
		if c != catLogs {
			entries += r.Entries[c]
		}
	}
	return bytes, entries
}

// String lists the categories, biggest first.
func (r *minimizeReport) String() string {
	cats := make([]string, 0, len(r.Bytes))
	for c := range r.Bytes {
		cats = append(cats, c)
	}
	sort.Slice(cats, func(i, j int) bool { return r.Bytes[cats[i]] > r.Bytes[cats[j]] })
	var parts []string
	for _, c := range cats {
		parts = append(parts, fmt.Sprintf("%s %s (%d)", c, bytesize.MB(r.Bytes[c]), r.Entries[c]))
	}
	return strings.Join(parts, ", ")
}

// minimizeTree removes from the image tree at root (nothing mounted in it,
// nothing running) what m leaves out. It only walks real directories.
func minimizeTree(root string, m *MinimizeConfig) (*minimizeReport, error) {
	rep := &minimizeReport{Bytes: map[string]int64{}, Entries: map[string]int{}}
	// Documentation, but each package's copyright (the licence record).
	if err := removeUnder(root, docDir, rep, "docs", keep{file: func(rel string) bool {
		return path.Base(rel) == "copyright" && strings.Count(rel, "/") == 1
	}}); err != nil {
		return rep, err
	}
	for dir, cat := range map[string]string{"/usr/share/man": "man pages", "/usr/share/info": "info pages",
		"/usr/share/lintian": "lintian overrides", "/usr/share/linda": "lintian overrides", "/usr/share/doc-base": "docs"} {
		if err := removeUnder(root, dir, rep, cat, keep{}); err != nil {
			return rep, err
		}
	}
	langs := keptLanguages(m.Locales)
	if err := removeUnder(root, localeDir, rep, "translations", keep{
		file: func(rel string) bool { return rel == "locale.alias" },
		tree: func(rel string) bool { return langs[rel] },
	}); err != nil {
		return rep, err
	}
	if err := removeUnder(root, "/usr/lib/locale", rep, "locales", keep{
		file: func(rel string) bool { return rel == "locale-archive" },
		tree: func(rel string) bool { return keptLocaleDir(rel, m.Locales) },
	}); err != nil {
		return rep, err
	}
	if !m.KeepGconv {
		dirs, err := globInTree(root, gconvGlob)
		if err != nil {
			return rep, err
		}
		for _, d := range dirs {
			// The modules go; their configuration stays, so iconv says a
			// charset is unavailable rather than failing oddly.
			if err := removeUnder(root, d, rep, "gconv modules", keep{file: func(rel string) bool {
				return !strings.HasSuffix(rel, ".so")
			}}); err != nil {
				return rep, err
			}
		}
	}
	if err := truncateLogs(root, rep); err != nil {
		return rep, err
	}
	for _, g := range m.RemoveFiles {
		matches, err := globInTree(root, g)
		if err != nil {
			return rep, err
		}
		for _, p := range matches {
			n, count, err := removeAll(filepath.Join(root, p))
			if err != nil {
				return rep, err
			}
			rep.Bytes["remove_files"] += n
			rep.Entries["remove_files"] += count
		}
	}
	return rep, nil
}

// keep says what stays under a directory being emptied, by paths relative
// to it: files, and whole subtrees.
type keep struct {
	file func(rel string) bool
	tree func(rel string) bool
}

// removeUnder removes what lies under the image directory dir (not dir
// itself) except what k keeps. Directories left empty go too, but dir
// stays.
func removeUnder(root, dir string, rep *minimizeReport, cat string, k keep) error {
	base, ok := realDir(root, strings.TrimPrefix(dir, "/"))
	if !ok {
		return nil
	}
	var dirs []string
	err := filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(base, p)
		if rel == "." {
			return nil
		}
		if d.IsDir() {
			if k.tree != nil && k.tree(rel) {
				return filepath.SkipDir
			}
			dirs = append(dirs, p)
			return nil
		}
		if k.file != nil && k.file(rel) {
			return nil
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		if err := os.Remove(p); err != nil {
			return err
		}
		rep.add(cat, st.Size)
		return nil
	})
	if err != nil {
		return err
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := unix.Rmdir(dirs[i]); err == nil {
			rep.Entries[cat]++
		}
	}
	return nil
}

// keptLanguages are the /usr/share/locale directories the locales keep:
// en_US.UTF-8 keeps en_US and en.
func keptLanguages(locales []string) map[string]bool {
	out := map[string]bool{}
	for _, l := range locales {
		l, _, _ = strings.Cut(l, "@")
		l, _, _ = strings.Cut(l, ".")
		if l == "C" || l == "POSIX" {
			continue
		}
		out[l] = true
		lang, _, _ := strings.Cut(l, "_")
		out[lang] = true
	}
	return out
}

// keptLocaleDir says whether a compiled locale in /usr/lib/locale stays:
// C.utf8 always, and the kept locales (glibc writes their codeset folded,
// en_US.utf8 for en_US.UTF-8).
func keptLocaleDir(name string, locales []string) bool {
	fold := func(s string) string { return strings.ToLower(strings.ReplaceAll(s, "-", "")) }
	if fold(name) == "c.utf8" {
		return true
	}
	for _, l := range locales {
		if fold(l) == fold(name) {
			return true
		}
	}
	return false
}

// truncateLogs empties the regular files under /var/log, keeping them (and
// their owners and modes: some daemons need them to exist).
func truncateLogs(root string, rep *minimizeReport) error {
	base, ok := realDir(root, "var/log")
	if !ok {
		return nil
	}
	return filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil || st.Size == 0 {
			return err
		}
		if err := unix.Truncate(p, 0); err != nil {
			return err
		}
		rep.add(catLogs, st.Size)
		return nil
	})
}

// globInTree expands an absolute in-image glob under root. Every component
// but the last must be a real directory: a symlink on the way, into the
// image or out of it, is never followed. It returns in-image paths.
func globInTree(root, pattern string) ([]string, error) {
	parts := strings.Split(strings.Trim(pattern, "/"), "/")
	cur := []string{"/"}
	for i, part := range parts {
		var next []string
		for _, dir := range cur {
			host := filepath.Join(root, dir)
			var st unix.Stat_t
			if err := unix.Lstat(host, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
				continue
			}
			ents, err := os.ReadDir(host)
			if err != nil {
				return nil, err
			}
			for _, e := range ents {
				if ok, _ := path.Match(part, e.Name()); !ok {
					continue
				}
				if i < len(parts)-1 && !e.IsDir() {
					continue // a file or a symlink where a directory must be
				}
				next = append(next, path.Join(dir, e.Name()))
			}
		}
		cur = next
	}
	return cur, nil
}

// removeAll removes p (never following a symlink) and says how many bytes
// and entries went.
func removeAll(p string) (int64, int, error) {
	t, err := treesize.Measure(p)
	if err != nil {
		return 0, 0, err
	}
	return t.Apparent, int(t.Entries), os.RemoveAll(p)
}

// dpkgExcludes are the dpkg path-exclude rules that keep later installs as
// slim as minimize left the image.
func dpkgExcludes(m *MinimizeConfig) string {
	lines := []string{
		"# Installed by strata-chroot's minimize: packages installed later stay as slim as the image.",
		"# Documentation, but each package's copyright (the licence record).",
		"path-exclude=/usr/share/doc/*",
		"path-include=/usr/share/doc/*/copyright",
		"path-exclude=/usr/share/man/*",
		"path-exclude=/usr/share/info/*",
		"path-exclude=/usr/share/lintian/*",
		"path-exclude=/usr/share/linda/*",
		"path-exclude=/usr/share/doc-base/*",
		"# Translations, but the kept locales'.",
		"path-exclude=/usr/share/locale/*",
		"path-include=/usr/share/locale/locale.alias",
	}
	langs := make([]string, 0)
	for l := range keptLanguages(m.Locales) {
		langs = append(langs, l)
	}
	sort.Strings(langs)
	for _, l := range langs {
		lines = append(lines, "path-include=/usr/share/locale/"+l+"/*")
	}
	if !m.KeepGconv {
		lines = append(lines, "# glibc's charset modules (UTF-8 needs none).", "path-exclude=/usr/lib/*/gconv/*.so")
	}
	return strings.Join(lines, "\n") + "\n"
}

// dpkgExcludesFile is where the rules go in the image.
const dpkgExcludesFile = "/etc/dpkg/dpkg.cfg.d/01-strata-minimize"

// imageSize is a tree's apparent size (regular files and symlinks, as
// du --apparent-size counts them, but directories) and entry count, and how
// much of it is build-time state the commit leaves out.
type imageSize struct {
	apparent     int64
	entries      int
	stateBytes   int64
	stateEntries int
}

// measureImage measures the image tree at root (nothing mounted in it).
func measureImage(root string) (imageSize, error) {
	total, state, err := treesize.MeasureSplit(root, isBuildState)
	return imageSize{apparent: total.Apparent, entries: int(total.Entries),
		stateBytes: state.Apparent, stateEntries: int(state.Entries)}, err
}

// isBuildState says whether the in-image path rel is build-time state the
// commit leaves out (scrub.go's buildTimeState).
func isBuildState(rel string) bool {
	dir, name := path.Split(rel)
	dir = strings.TrimSuffix(dir, "/")
	for _, b := range buildTimeState {
		if b.dir == dir && !keepInState[rel] {
			if ok, _ := path.Match(b.glob, name); ok {
				return true
			}
		}
	}
	return false
}
