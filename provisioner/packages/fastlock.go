package packages

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/strata-build/packer-plugin-strata/internal/apt"
)

// The lock file's fast path. A lock names the exact closure an install
// resolved; when it also records where each .deb came from and its sha256
// (lock files written since this records both), nothing needs apt's
// resolver or its package indexes: apt-helper fetches exactly those files
// through the image's apt configuration (so through strata-chroot's package
// cache, which checks every pool file against the signed indexes it
// served), checks each against the sha256 the lock recorded, and dpkg
// installs the set. Anything missing or failing (a .deb no longer
// offered, a dependency the parent image lacks) falls back to apt-get
// install of the locked versions, which fixes what dpkg left half done.

// uriRe is the URIs the fast path passes on, single-quoted: http(s) only,
// no quote or space or anything a shell would read in one.
var (
	uriRe    = regexp.MustCompile(`^https?://[A-Za-z0-9._~:/?#@!$&()*+,;=%-]+$`)
	sha256Re = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// printURIsRe reads apt-get download --print-uris: 'URI' file size hash
// (apt's best hash, SHA512 when the index has it: the sha256 is taken from
// apt-cache show).
var printURIsRe = regexp.MustCompile(`(?m)^'([^']+)' (\S+) (\d+) \S+$`)

// fastPathReady says whether every locked package records its .deb, so
// that the fast path can install the lock without apt's resolver.
func (l *Lock) fastPathReady() bool {
	if len(l.Packages) == 0 {
		return false
	}
	for _, p := range l.Packages {
		if !uriRe.MatchString(p.URI) || !sha256Re.MatchString(p.SHA256) || strings.Contains(p.URI, "'") {
			return false
		}
	}
	return true
}

// fastInstallCommand downloads the locked packages not yet installed at
// their version (verified by sha256) and hands them to dpkg at once; ""
// when nothing needs installing. apt-helper downloads as _apt, into a
// directory of _apt's, so the image's _apt could swap a file there after
// apt-helper checked it: the named .debs (no other file) are copied into
// a directory only root can write (a link or a special file is copied as
// itself, never read through, and then refused), checked against the
// lock's sha256 again there, and dpkg installs those copies.
func fastInstallCommand(l *Lock, before installedSet) string {
	var fetch, names, sums []string
	for i, p := range l.Packages {
		if before[p.key()] == p.Version {
			continue
		}
		f := fmt.Sprintf("%03d.deb", i)
		fetch = append(fetch, fmt.Sprintf("'%s' \"$d/%s\" SHA256:%s", p.URI, f, p.SHA256))
		names = append(names, f)
		sums = append(sums, p.SHA256+` "$r/`+f+`"`)
	}
	if len(fetch) == 0 {
		return ""
	}
	var src, dst []string
	for _, f := range names {
		src = append(src, `"$d/`+f+`"`)
		dst = append(dst, `"$r/`+f+`"`)
	}
	script := `set -e; r=; d=$(mktemp -d /tmp/strata-lock.XXXXXX); trap "rm -rf \"\$d\" \${r:+\"\$r\"}" EXIT; ` +
		`r=$(mktemp -d /tmp/strata-lock.XXXXXX); ` +
		// apt-helper's download runs as _apt when the directory is _apt's.
		`chown _apt "$d" 2>/dev/null || true; ` +
		`/usr/lib/apt/apt-helper -q download-file ` + strings.Join(fetch, " ") + `; ` +
		`cp -R ` + strings.Join(src, " ") + ` "$r/"; ` +
		`for f in ` + strings.Join(names, " ") + `; do if [ -L "$r/$f" ] || [ ! -f "$r/$f" ]; then echo "$f is no regular file" >&2; exit 1; fi; done; ` +
		`printf "%s  %s\n" ` + strings.Join(sums, " ") + ` | sha256sum -c --quiet --strict -; ` +
		`env DEBIAN_FRONTEND=noninteractive dpkg --force-confdef --force-confold -i ` + strings.Join(dst, " ")
	return shQuote(script)
}

// autoMarkCommand records packages as automatically installed in apt's
// extended_states directly (apt-mark would build apt's whole cache first):
// only for packages with no entry there yet, which appending cannot get
// wrong; "" when there is none such.
func autoMarkCommand(mark []string, present map[string]bool) (string, bool) {
	var b strings.Builder
	for _, m := range mark {
		if present[m] {
			return "", false
		}
		name, arch, _ := strings.Cut(m, ":")
		fmt.Fprintf(&b, `\nPackage: %s\nArchitecture: %s\nAuto-Installed: 1\n`, name, arch)
	}
	if b.Len() == 0 {
		return "", true
	}
	return shQuote(`mkdir -p /var/lib/apt && printf "` + b.String() + `" >> ` + extendedStatesPath), true
}

// recordDebs fills in where each locked package's .deb came from, as
// apt-get download --print-uris says (from the same indexes the install
// used). A package it cannot say keeps none: the lock then installs
// through apt.
func (s *shell) recordDebs(ctx context.Context, pkgs []LockedPackage, native string) {
	specs := make([]string, 0, len(pkgs))
	for _, p := range pkgs {
		specs = append(specs, p.spec(native))
	}
	if len(specs) == 0 {
		return
	}
	out, status, err := s.quiet(ctx, apt.Get(append([]string{"download", "--print-uris"}, specs...)...))
	if err != nil || status != 0 {
		return
	}
	uris := map[string]string{}
	for _, m := range printURIsRe.FindAllStringSubmatch(out, -1) {
		uris[m[2]] = m[1]
	}
	out, status, err = s.quiet(ctx, "apt-cache show "+strings.Join(specs, " "))
	if err != nil || status != 0 {
		return
	}
	sums := map[string]string{} // name:arch=version -> sha256
	for _, stanza := range strings.Split(out, "\n\n") {
		f := map[string]string{}
		for _, line := range strings.Split(stanza, "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && !strings.HasPrefix(line, " ") {
				f[k] = strings.TrimSpace(v)
			}
		}
		if sha256Re.MatchString(f["SHA256"]) {
			sums[f["Package"]+":"+f["Architecture"]+"="+f["Version"]] = f["SHA256"]
		}
	}
	for i := range pkgs {
		p := &pkgs[i]
		// apt's file name for a .deb: name_version_arch.deb, the epoch's
		// colon quoted as %3a.
		f := p.Name + "_" + strings.ReplaceAll(p.Version, ":", "%3a") + "_" + p.Architecture + ".deb"
		sum := sums[p.key()+"="+p.Version]
		if u := uris[f]; uriRe.MatchString(u) && !strings.Contains(u, "'") && sum != "" {
			p.URI, p.SHA256 = u, sum
		}
	}
	sort.Slice(pkgs, func(i, j int) bool { return pkgs[i].key() < pkgs[j].key() })
}

// fastInstall installs the lock's .debs directly and runs then (the
// automatic marks, "" for none) after them, in one round trip, and returns
// dpkg's database as it is after. It returns nil when it did not install
// (a file no longer fetchable, dpkg refusing the set): the caller then
// installs the locked versions through apt.
func (s *shell) fastInstall(ctx context.Context, l *Lock, before installedSet, then string) (installedSet, error) {
	cmd := fastInstallCommand(l, before)
	if cmd == "" {
		s.ui.Say("Every locked package is installed at its locked version already")
		if then == "" {
			return before, nil
		}
		cmd = then
	} else {
		s.ui.Say(fmt.Sprintf("Installing the locked .debs directly (%d package(s), sha256 checked, no resolver) ...", len(l.Packages)))
		if then != "" {
			cmd += " && " + then
		}
	}
	after, err := s.aptThenInstalled(ctx, "install from lock_file "+s.config.LockFile, cmd)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		s.ui.Say("The direct install did not work (" + firstLine(err.Error()) + "); installing the locked versions through apt instead")
		return nil, nil
	}
	return after, nil
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}
