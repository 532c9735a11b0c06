package dpkg

import (
	"strings"
	"testing"
)

const status = `Package: libc6
Status: install ok installed
Priority: optional
Architecture: amd64
Multi-Arch: same
Source: glibc
Version: 2.36-9+deb12u4
Installed-Size: 12986
Description: GNU C Library: Shared libraries
 Contains the standard libraries.

Package: removed
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0

Package: bash
Essential: yes
Status: install ok installed
Priority: required
Architecture: amd64
Version: 5.2.15-2+b2
Source: bash (5.2.15-2)
Installed-Size: 7164

Package: held
Status: hold ok installed
Architecture: all
Version: 2.0

Package: evil
Status: install ok installed
Architecture: all
Version: 1.0	injected
`

func TestReadStatus(t *testing.T) {
	pkgs, err := ReadStatus(strings.NewReader(status))
	if err != nil {
		t.Fatal(err)
	}
	if len(pkgs) != 4 || pkgs[2].Name != "held" {
		t.Fatalf("got %+v, want bash, evil, held (a held package is installed) and libc6 (config-files only is not installed)", pkgs)
	}
	bash, libc := pkgs[0], pkgs[3]
	if bash.Name != "bash" || !bash.Essential || bash.Source != "bash" || bash.SourceVersion != "5.2.15-2" || bash.InstalledSize != 7164*1024 {
		t.Errorf("bash: %+v", bash)
	}
	if libc.Source != "glibc" || libc.SourceVersion != "2.36-9+deb12u4" || libc.Essential {
		t.Errorf("libc6: %+v", libc)
	}
	tsv := string(TSV(pkgs))
	want := "bash\t5.2.15-2+b2\tamd64\tbash\t5.2.15-2\t7335936\n" +
		"evil\t1.0 injected\tall\tevil\t1.0 injected\t0\n" +
		"held\t2.0\tall\theld\t2.0\t0\n" +
		"libc6\t2.36-9+deb12u4\tamd64\tglibc\t2.36-9+deb12u4\t13297664\n"
	if tsv != want {
		t.Errorf("TSV:\n%s\nwant:\n%s", tsv, want)
	}
}

func TestReadStatusMalformed(t *testing.T) {
	if _, err := ReadStatus(strings.NewReader("Package: x\nno colon here\n")); err == nil {
		t.Error("a malformed line was accepted")
	}
	if _, err := ReadStatus(strings.NewReader("Status: install ok installed\nArchitecture: all\n")); err == nil {
		t.Error("a stanza without Package was accepted")
	}
}
