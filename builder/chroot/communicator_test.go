package chroot

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCommunicatorFilesStayInsideRoot(t *testing.T) {
	root := imageRoot(t)
	host := t.TempDir()
	hostSecret := filepath.Join(host, "secret")
	os.WriteFile(hostSecret, []byte("host only"), 0o600)
	// Absolute symlinks in the image that name host paths.
	os.Symlink(host, filepath.Join(root, "opt"))
	os.Symlink(hostSecret, filepath.Join(root, "etc/secret"))
	c := &Communicator{Root: root}

	fi, _ := os.Stat(hostSecret)
	if err := c.Upload("/opt/uploaded", strings.NewReader("data"), &fi); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(host, "uploaded")); err == nil {
		t.Fatal("upload followed an image symlink onto the host")
	}
	got, err := os.ReadFile(filepath.Join(root, host, "uploaded"))
	if err != nil || string(got) != "data" {
		t.Fatalf("upload not inside the image: %q %v", got, err)
	}
	if st, _ := os.Stat(filepath.Join(root, host, "uploaded")); st.Mode().Perm() != 0o600 {
		t.Fatalf("upload mode %v, want the source's 0600", st.Mode().Perm())
	}
	var buf bytes.Buffer
	if err := c.Download("/etc/secret", &buf); err == nil && buf.String() == "host only" {
		t.Fatal("download read a host file through an image symlink")
	}
}

func TestCommunicatorDirs(t *testing.T) {
	root := imageRoot(t)
	src := t.TempDir()
	os.MkdirAll(filepath.Join(src, "tree/sub"), 0o755)
	os.WriteFile(filepath.Join(src, "tree/sub/f"), []byte("f"), 0o640)
	os.WriteFile(filepath.Join(src, "tree/skip.log"), []byte("x"), 0o644)
	os.Symlink("sub/f", filepath.Join(src, "tree/link"))
	c := &Communicator{Root: root}

	if err := c.UploadDir("/srv", filepath.Join(src, "tree"), []string{"*.log"}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "srv/tree/sub/f")); string(b) != "f" {
		t.Fatal("UploadDir without a trailing slash must copy the directory itself")
	}
	if _, err := os.Stat(filepath.Join(root, "srv/tree/skip.log")); err == nil {
		t.Fatal("excluded file was uploaded")
	}
	if l, _ := os.Readlink(filepath.Join(root, "srv/tree/link")); l != "sub/f" {
		t.Fatalf("symlink not kept: %q", l)
	}
	if err := c.UploadDir("/srv2", filepath.Join(src, "tree")+"/", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "srv2/sub/f")); err != nil {
		t.Fatal("UploadDir with a trailing slash must copy the contents")
	}

	dst := t.TempDir()
	if err := c.DownloadDir("/srv/tree/", dst, nil); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "sub/f")); string(b) != "f" {
		t.Fatal("DownloadDir lost a file")
	}
}

func TestShellQuoteAndEnv(t *testing.T) {
	if q := shellQuote("it's"); q != `'it'"'"'s'` {
		t.Fatalf("quote %s", q)
	}
	env := chrootEnv(map[string]string{"B": "2", "A": "1", "PATH": "/custom"})
	joined := strings.Join(env, " ")
	if !strings.Contains(joined, "DEBIAN_FRONTEND=noninteractive") || !strings.HasSuffix(joined, "A=1 B=2 PATH=/custom") {
		t.Fatalf("env %v: user values must come last so they win", env)
	}
	w, err := wrapCommand("sudo -E {{.Command}} # {{.MountPath}}", "ls", "/m")
	if err != nil || w != "sudo -E ls # /m" {
		t.Fatalf("wrap = %q, %v", w, err)
	}
}
