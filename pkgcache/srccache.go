package pkgcache

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// SourceCacheName is apt's binary cache of the lists alone (no dpkg
// status), which a shared copy carries in its cache/ dir.
const SourceCacheName = "srcpkgcache.bin"

// makeSourceCache writes apt's srcpkgcache.bin for the verified lists in
// lists into cache, with the build host's apt, never the image's: apt
// maps that file and trusts it, so one written inside a hostile chroot is
// never shared. apt records each list by its path and checks path, size
// and modification time before it uses the file, so the host's apt-cache
// runs in a private mount namespace where the lists (read-only) and cache
// sit where the chroot's apt sees them, with none of the host's apt
// configuration or sources: only set's. The image's apt uses the file
// when its apt, architectures and sources are the same (a bookworm image
// on a bookworm host), and silently builds its own when not.
func makeSourceCache(ctx context.Context, lists, cache string, set IndexSet) error {
	conf, err := os.MkdirTemp(filepath.Dir(cache), "apt-conf-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(conf)
	var src strings.Builder
	for _, s := range set.Sources {
		for _, suite := range s.Suites {
			// The image's words, checked before they reach the host's apt.
			if releaseURL(s.URI, suite) == "" || !plainWords(append([]string{s.URI, suite}, s.Components...)) {
				return fmt.Errorf("the source %s %s is not one the host's apt is given", s.URI, suite)
			}
			fmt.Fprintf(&src, "deb %s %s %s\n", s.URI, suite, strings.Join(s.Components, " "))
		}
	}
	if err := os.WriteFile(filepath.Join(conf, "sources.list"), []byte(src.String()), 0o644); err != nil {
		return err
	}
	if err := os.Mkdir(filepath.Join(conf, "empty"), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(conf, "apt.conf"), nil, 0o644); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	script := `set -e
mount --make-rprivate /
mount --bind "$1" /var/lib/apt/lists
mount -o remount,bind,ro /var/lib/apt/lists
mount --bind "$2" /var/cache/apt
shift 2
exec apt-cache "$@" gencaches`
	args := []string{"--mount", "--propagation", "private", "sh", "-c", script, "sh", lists, cache,
		"-o", "Dir::Etc::Parts=" + filepath.Join(conf, "empty"),
		"-o", "Dir::Etc::SourceList=" + filepath.Join(conf, "sources.list"),
		"-o", "Dir::Etc::SourceParts=" + filepath.Join(conf, "empty"),
		"-o", "Dir::Etc::Preferences=" + filepath.Join(conf, "empty", "none"),
		"-o", "Dir::Etc::PreferencesParts=" + filepath.Join(conf, "empty"),
		"-o", "Dir::State::Lists=/var/lib/apt/lists/",
		"-o", "Dir::Cache=/var/cache/apt/",
		"-o", "Dir::Cache::srcpkgcache=" + SourceCacheName,
		"-o", "Dir::Cache::pkgcache=pkgcache.bin",
		"-o", "Dir::State::status=/dev/null",
		"-o", "APT::Architecture=" + set.Arch,
		"-o", "APT::Architectures::=" + set.Arch,
		"-o", "Acquire::Languages=none",
		"-q",
	}
	cmd := exec.CommandContext(ctx, "unshare", args...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "APT_CONFIG=" + filepath.Join(conf, "apt.conf"), "LC_ALL=C"}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("apt-cache gencaches: %v: %s", err, strings.TrimSpace(out.String()))
	}
	// pkgcache.bin holds a dpkg status (here none): each build makes its own.
	os.Remove(filepath.Join(cache, "pkgcache.bin"))
	if _, err := os.Stat(filepath.Join(cache, SourceCacheName)); err != nil {
		return fmt.Errorf("apt-cache gencaches wrote no %s: %s", SourceCacheName, strings.TrimSpace(out.String()))
	}
	return nil
}

// plainWords says whether every word is printable ASCII without spaces,
// quotes, brackets or comment signs.
func plainWords(words []string) bool {
	for _, w := range words {
		if w == "" {
			return false
		}
		for i := 0; i < len(w); i++ {
			if c := w[i]; c <= ' ' || c >= 0x7f || strings.IndexByte("\"'[]#\\`$", c) >= 0 {
				return false
			}
		}
	}
	return true
}
