package packages

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/strata-build/packer-plugin-strata/internal/dpkg"
	"github.com/strata-build/packer-plugin-strata/internal/storeroot"
)

// LockVersion is the lock file format this provisioner writes and reads.
const LockVersion = 1

// Lock is a lock file: what an install asked for and the exact versions it
// resolved, the whole closure.
type Lock struct {
	LockVersion int    `json:"lock_version"`
	Comment     string `json:"comment,omitempty"`
	// Install is the install list the lock was resolved for, sorted.
	Install []string `json:"install"`
	// Upgrade says whether upgrade = true was part of it.
	Upgrade  bool            `json:"upgrade,omitempty"`
	Packages []LockedPackage `json:"packages"`
}

// LockedPackage is one package at the version the install resolved.
type LockedPackage struct {
	Name         string `json:"name"`
	Architecture string `json:"architecture"`
	Version      string `json:"version"`
	// Requested is true for the packages install lists; the others came
	// in as dependencies and are marked automatically installed.
	Requested bool `json:"requested,omitempty"`
	// URI and SHA256 are where the .deb came from and its digest, as the
	// signed indexes said when the lock was written: with them, the lock
	// installs without apt's resolver (fastlock.go).
	URI    string `json:"uri,omitempty"`
	SHA256 string `json:"sha256,omitempty"`
}

func (p LockedPackage) key() string { return p.Name + ":" + p.Architecture }

// spec is the package as apt-get install takes it, at its locked
// version; the architecture is spelled out only when it is foreign.
func (p LockedPackage) spec(native string) string {
	n := p.Name
	if p.Architecture != native && p.Architecture != "all" {
		n += ":" + p.Architecture
	}
	return n + "=" + p.Version
}

// maxLockSize bounds a lock file: a few hundred bytes a package.
const maxLockSize = 64 << 20

// lockPath is where lock_file leads now (storeroot.Real: links followed,
// .. applied), in a directory that exists.
func lockPath(p string) (string, error) {
	real, err := storeroot.Real(p)
	if err != nil {
		return "", fmt.Errorf("lock_file: %w", err)
	}
	if fi, err := os.Stat(filepath.Dir(real)); err != nil || !fi.IsDir() {
		return "", fmt.Errorf("lock_file: the directory %s does not exist; create it or pick another path", filepath.Dir(real))
	}
	return real, nil
}

// ReadLock reads and checks a lock file. It returns nil, nil when there is
// none. Only a regular file is read, opened without blocking and at most
// maxLockSize bytes: a FIFO or device there is an error, not a hang.
func ReadLock(path string) (*Lock, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NONBLOCK|unix.O_NOFOLLOW|unix.O_NOCTTY, 0)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file; point lock_file at a file", path)
	} else if fi.Size() > maxLockSize {
		return nil, fmt.Errorf("%s is larger than %d bytes, which no lock file is", path, maxLockSize)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxLockSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxLockSize {
		return nil, fmt.Errorf("%s is larger than %d bytes, which no lock file is", path, maxLockSize)
	}
	var l Lock
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&l); err != nil {
		return nil, fmt.Errorf("%s is not a strata-packages lock file: %v (delete it or set update_lock = true)", path, err)
	}
	if l.LockVersion != LockVersion {
		return nil, fmt.Errorf("%s: lock_version %d; this provisioner reads %d (set update_lock = true to rewrite it)", path, l.LockVersion, LockVersion)
	}
	// The names and versions go into commands: only what Debian allows.
	for _, p := range l.Packages {
		if !dpkg.ValidName(p.Name) || strings.Contains(p.Name, ":") || !dpkg.ValidVersion(p.Version) || !dpkg.ValidName(p.Architecture) {
			return nil, fmt.Errorf("%s: %q %q %q is not a package name, version and architecture (set update_lock = true to rewrite it)", path, p.Name, p.Version, p.Architecture)
		}
		if (p.URI != "" && (!uriRe.MatchString(p.URI) || strings.Contains(p.URI, "'"))) || (p.SHA256 != "" && !sha256Re.MatchString(p.SHA256)) {
			return nil, fmt.Errorf("%s: %s: %q %q is not an http(s) URI and a sha256 (set update_lock = true to rewrite it)", path, p.Name, p.URI, p.SHA256)
		}
	}
	return &l, nil
}

// WriteLock writes l to path atomically: a reader sees the old lock or the
// new one.
func WriteLock(path string, l *Lock) error {
	sort.Slice(l.Packages, func(i, j int) bool { return l.Packages[i].key() < l.Packages[j].key() })
	b, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// installedSet is the packages dpkg has installed, by name:arch, with
// their versions.
type installedSet map[string]string

// closure is what an install resolved: every package whose version changed
// or that appeared between before and after, and the requested packages
// that were already there.
func closure(before, after installedSet, requested []request, native string) []LockedPackage {
	asked := map[string]bool{}
	for _, r := range requested {
		asked[r.Name] = true
	}
	isAsked := func(name, arch string) bool {
		return asked[name] || asked[name+":"+arch] || (arch == native && asked[name+":"+native])
	}
	var out []LockedPackage
	for key, v := range after {
		name, arch, _ := strings.Cut(key, ":")
		if before[key] == v && !isAsked(name, arch) {
			continue
		}
		out = append(out, LockedPackage{Name: name, Architecture: arch, Version: v, Requested: isAsked(name, arch)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key() < out[j].key() })
	return out
}

// unlocked are the packages an install from a lock changed that the lock
// does not list: the lock no longer describes what the install does.
func unlocked(before, after installedSet, l *Lock) []string {
	locked := map[string]bool{}
	for _, p := range l.Packages {
		locked[p.key()] = true
	}
	var out []string
	for key, v := range after {
		if before[key] != v && !locked[key] {
			out = append(out, strings.Replace(key, ":", " (", 1)+") "+v)
		}
	}
	slices.Sort(out)
	return out
}
