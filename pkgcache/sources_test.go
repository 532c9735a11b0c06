package pkgcache

import (
	"os"
	"path/filepath"
	"testing"
)

func writeFile(t *testing.T, p, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestHostMirrorOneLine(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "etc/apt/sources.list"), `# comment
deb-src http://src.example/debian bookworm main
deb http://security.example/debian-security bookworm-security main
deb [arch=amd64 signed-by=/usr/share/keyrings/k.gpg] http://mirror.example/debian/ bookworm main contrib # trailing
`)
	m, err := HostMirror(root)
	if err != nil {
		t.Fatal(err)
	}
	if m != "http://mirror.example/debian" {
		t.Fatalf("mirror = %q", m)
	}
}

func TestHostMirrorDeb822(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "etc/apt/sources.list.d/a-disabled.sources"), `Types: deb
URIs: http://disabled.example/debian
Suites: bookworm
Components: main
Enabled: no
`)
	writeFile(t, filepath.Join(root, "etc/apt/sources.list.d/debian.sources"), `Types: deb deb-src
# a comment inside
URIs: http://one.example/debian
 http://two.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://sec.example/debian-security
Suites: bookworm-security
Components: main
`)
	writeFile(t, filepath.Join(root, "etc/apt/sources.list.d/other.list.disabled"), "deb http://ignored.example/ x main\n")
	srcs, err := HostSources(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(srcs) != 3 {
		t.Fatalf("sources = %+v, want 3 (two URIs of one stanza, and security)", srcs)
	}
	m, _ := HostMirror(root)
	if m != "http://one.example/debian" {
		t.Fatalf("mirror = %q", m)
	}
}

func TestHostMirrorNone(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "etc/apt/sources.list"), "deb http://sec.example/ bookworm-security main\n")
	m, err := HostMirror(root)
	if err != nil || m != "" {
		t.Fatalf("mirror = %q, %v; want none", m, err)
	}
	m, err = HostMirror(t.TempDir())
	if err != nil || m != "" {
		t.Fatalf("no apt dir: mirror = %q, %v", m, err)
	}
}
