package packages

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// runFastInstall runs the fast path's command on the host with a fake
// apt-helper (the script helper, which gets the download-file arguments)
// and a fake dpkg that logs "name sha256" for each .deb it is given. It
// returns the command's error and dpkg's log ("" when dpkg never ran).
func runFastInstall(t *testing.T, l *Lock, helper string) (error, string) {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	tmp := filepath.Join(dir, "tmp")
	for _, d := range []string{bin, tmp} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	log := filepath.Join(dir, "dpkg.log")
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(bin, name), []byte("#!/bin/sh\n"+body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write("apt-helper", helper)
	write("dpkg", `for a in "$@"; do case "$a" in -*) ;; *) echo "$(basename "$a") $(sha256sum < "$a" | cut -d" " -f1)" >> `+log+`;; esac; done`+"\n")
	cmd := fastInstallCommand(l, installedSet{})
	cmd = strings.ReplaceAll(cmd, "/tmp/strata-", tmp+"/strata-")
	cmd = strings.ReplaceAll(cmd, "/usr/lib/apt/apt-helper", filepath.Join(bin, "apt-helper"))
	c := exec.Command("sh", "-c", cmd)
	c.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"))
	out, err := c.CombinedOutput()
	if err != nil {
		err = fmt.Errorf("%v: %s", err, out)
	}
	data, _ := os.ReadFile(log)
	if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
		t.Errorf("the command left %d entries in /tmp", len(ents))
	}
	return err, string(data)
}

func sum(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// fakeHelper writes each download's content as "deb <its URI's base>",
// then runs evil (as the image's _apt could, once apt-helper has checked
// the files) with $d the download dir.
func fakeHelper(evil string) string {
	return `shift 2
while [ $# -gt 0 ]; do printf 'deb %s' "$(basename "$1")" > "$2"; d=$(dirname "$2"); shift 3; done
` + evil + "\n"
}

// TestFastInstallVerifiesWhatDpkgGets: the .debs dpkg installs are the
// locked ones, checked again where only root can change them: a .deb
// swapped or added in the download dir (which is _apt's) after apt-helper's
// check never reaches dpkg.
func TestFastInstallVerifiesWhatDpkgGets(t *testing.T) {
	l := &Lock{Packages: []LockedPackage{
		{Name: "a", Architecture: "amd64", Version: "1", URI: "http://cache.invalid/pool/a.deb", SHA256: sum("deb a.deb")},
		{Name: "b", Architecture: "amd64", Version: "1", URI: "http://cache.invalid/pool/b.deb", SHA256: sum("deb b.deb")},
	}}
	err, log := runFastInstall(t, l, fakeHelper(""))
	if err != nil {
		t.Fatal(err)
	}
	if want := "000.deb " + sum("deb a.deb") + "\n001.deb " + sum("deb b.deb") + "\n"; log != want {
		t.Fatalf("dpkg got\n%s\nwant\n%s", log, want)
	}
	for name, evil := range map[string]string{
		"swapped": `printf evil > "$d/000.deb"`,
		"symlink": `rm "$d/001.deb"; ln -s /etc/hostname "$d/001.deb"`,
		"added":   `printf 'deb extra' > "$d/0000.deb"; cp "$d/000.deb" "$d/002.deb"`,
	} {
		t.Run(name, func(t *testing.T) {
			err, log := runFastInstall(t, l, fakeHelper(evil))
			for _, line := range strings.Split(strings.TrimSpace(log), "\n") {
				if line == "" {
					continue
				}
				if line != "000.deb "+sum("deb a.deb") && line != "001.deb "+sum("deb b.deb") {
					t.Fatalf("dpkg was given %q (err %v)", line, err)
				}
			}
			if name != "added" && err == nil {
				t.Fatalf("a swapped .deb did not stop the install; dpkg got %q", log)
			}
		})
	}
}
