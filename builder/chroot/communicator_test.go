package chroot

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/strata-build/packer-plugin-strata/internal/mount"
)

func testComm(t *testing.T, root string) *Communicator {
	chroot, _ := exec.LookPath("chroot")
	return &Communicator{
		Root:       openRoot(t, root),
		Wrap:       func(c string) (string, error) { return c, nil },
		Env:        chrootEnv(nil),
		ChrootProg: chroot,
	}
}

func srcFile(t *testing.T, name, content string, mode os.FileMode) (string, os.FileInfo) {
	p := filepath.Join(t.TempDir(), name)
	os.WriteFile(p, []byte(content), mode)
	os.Chmod(p, mode)
	fi, _ := os.Stat(p)
	return p, fi
}

// TestUploadLikeCp checks Upload against cp(1)/scp semantics, which the
// file provisioner's users rely on (amazon-chroot runs cp), always inside
// the image root.
func TestUploadLikeCp(t *testing.T) {
	host := t.TempDir()
	cases := []struct {
		name  string
		setup func(root string)
		dst   string
		want  string // where the content must land, in the image
		check func(t *testing.T, root string)
	}{
		{"new path, parents created", nil, "/a/b/new.txt", "/a/b/new.txt", nil},
		{"existing dir without slash", func(root string) { os.MkdirAll(filepath.Join(root, "srv"), 0o755) }, "/srv", "/srv/src.txt", nil},
		{"existing file replaced", func(root string) { os.WriteFile(filepath.Join(root, "etc/f"), []byte("old"), 0o600) }, "/etc/f", "/etc/f", nil},
		{"symlink: its target is replaced", func(root string) {
			os.WriteFile(filepath.Join(root, "etc/target"), []byte("old"), 0o644)
			os.Symlink("target", filepath.Join(root, "etc/link"))
		}, "/etc/link", "/etc/target", func(t *testing.T, root string) {
			if l, _ := os.Readlink(filepath.Join(root, "etc/link")); l != "target" {
				t.Errorf("the link itself changed: %q", l)
			}
		}},
		{"absolute symlink to a host path stays inside", func(root string) {
			os.Symlink(filepath.Join(host, "x"), filepath.Join(root, "etc/hostlink"))
		}, "/etc/hostlink", filepath.Join(host, "x"), func(t *testing.T, root string) {
			if _, err := os.Stat(filepath.Join(host, "x")); err == nil {
				t.Error("wrote onto the host through an image symlink")
			}
		}},
		{"dangling symlink: target created", func(root string) {
			os.Symlink("/opt/later.conf", filepath.Join(root, "etc/later"))
		}, "/etc/later", "/opt/later.conf", nil},
		{"symlinked directory", func(root string) {
			os.MkdirAll(filepath.Join(root, "real"), 0o755)
			os.Symlink("/real", filepath.Join(root, "alias"))
		}, "/alias/f", "/real/f", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := imageRoot(t)
			if c.setup != nil {
				c.setup(root)
			}
			src, fi := srcFile(t, "src.txt", "new content", 0o640)
			f, _ := os.Open(src)
			defer f.Close()
			if err := testComm(t, root).Upload(c.dst, f, &fi); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(filepath.Join(root, c.want))
			if err != nil || string(got) != "new content" {
				t.Fatalf("content at %s: %q %v", c.want, got, err)
			}
			if st, _ := os.Stat(filepath.Join(root, c.want)); st.Mode().Perm() != 0o640 {
				t.Errorf("mode %v, want the source's 0640", st.Mode().Perm())
			}
			if c.check != nil {
				c.check(t, root)
			}
		})
	}
}

// TestUploadReplacesPreparedFile: another user of the image (or of the
// host) prepared the destination (the shell provisioner's script in a
// world-writable /tmp) and keeps it open to swap the content: the upload
// replaces it by a new file, which the attacker can neither see nor change.
func TestUploadReplacesPreparedFile(t *testing.T) {
	root := imageRoot(t)
	os.MkdirAll(filepath.Join(root, "tmp"), 0o1777)
	os.Chmod(filepath.Join(root, "tmp"), 0o1777|os.ModeSticky)
	p := filepath.Join(root, "tmp/script.sh")
	os.WriteFile(p, []byte("echo attacker"), 0o666)
	os.Chown(p, 65534, 65534)
	held, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	fi := os.FileInfo(nil)
	if err := testComm(t, root).Upload("/tmp/script.sh", strings.NewReader("echo builder"), &fi); err != nil {
		t.Fatal(err)
	}
	held.WriteAt([]byte("echo swapped!"), 0)
	if got, _ := os.ReadFile(p); string(got) != "echo builder" {
		t.Fatalf("the script is %q: the attacker's file was written through", got)
	}
	st, _ := os.Stat(p)
	if st.Mode().Perm()&0o022 != 0 {
		t.Fatalf("the new script is writable by others: %v", st.Mode())
	}
}

// TestUploadDirLikeCpR: directory uploads follow cp -R.
func TestUploadDirLikeCpR(t *testing.T) {
	src := t.TempDir()
	os.MkdirAll(filepath.Join(src, "tree/sub"), 0o755)
	os.WriteFile(filepath.Join(src, "tree/sub/f"), []byte("f"), 0o640)
	os.WriteFile(filepath.Join(src, "tree/skip.log"), []byte("x"), 0o644)
	os.Symlink("sub/f", filepath.Join(src, "tree/link"))
	tree := filepath.Join(src, "tree")
	cases := []struct {
		name, dst, src string
		setup          func(root string)
		want           string // where tree/sub/f lands
	}{
		{"to a new path it becomes that dir", "/opt/new", tree, nil, "/opt/new/sub/f"},
		{"into an existing dir", "/srv", tree, func(root string) { os.MkdirAll(filepath.Join(root, "srv"), 0o755) }, "/srv/tree/sub/f"},
		{"trailing slash: contents into existing", "/srv", tree + "/", func(root string) { os.MkdirAll(filepath.Join(root, "srv"), 0o755) }, "/srv/sub/f"},
		{"trailing slash: contents into new", "/srv3", tree + "/", nil, "/srv3/sub/f"},
		{"a file in the upload over an image symlink", "/srv", tree + "/", func(root string) {
			os.MkdirAll(filepath.Join(root, "srv/sub"), 0o755)
			os.WriteFile(filepath.Join(root, "etc/real-f"), []byte("old"), 0o644)
			os.Symlink("/etc/real-f", filepath.Join(root, "srv/sub/f"))
		}, "/etc/real-f"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := imageRoot(t)
			if c.setup != nil {
				c.setup(root)
			}
			if err := testComm(t, root).UploadDir(c.dst, c.src, []string{"*.log"}); err != nil {
				t.Fatal(err)
			}
			if b, err := os.ReadFile(filepath.Join(root, c.want)); err != nil || string(b) != "f" {
				t.Fatalf("%s: %q %v", c.want, b, err)
			}
			base := filepath.Dir(filepath.Dir(filepath.Join(root, c.want)))
			if _, err := os.Lstat(filepath.Join(base, "skip.log")); err == nil {
				t.Error("an excluded file was uploaded")
			}
		})
	}
}

func TestDownloadStaysInsideRoot(t *testing.T) {
	root := imageRoot(t)
	hostSecret := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(hostSecret, []byte("host only"), 0o600)
	os.Symlink(hostSecret, filepath.Join(root, "etc/secret"))
	os.MkdirAll(filepath.Join(root, "var/log"), 0o755)
	os.WriteFile(filepath.Join(root, "var/log/a.log"), []byte("a"), 0o644)
	os.WriteFile(filepath.Join(root, "var/log/b.txt"), []byte("b"), 0o644)
	os.Symlink(hostSecret, filepath.Join(root, "var/log/c.log"))
	c := testComm(t, root)
	var buf bytes.Buffer
	if err := c.Download("/etc/secret", &buf); err == nil && buf.String() == "host only" {
		t.Fatal("download read a host file through an image symlink")
	}
	dst := t.TempDir()
	if err := c.DownloadDir("/var/log/*.log", dst, nil); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "a.log")); string(b) != "a" {
		t.Fatal("glob download lost a.log")
	}
	if _, err := os.Stat(filepath.Join(dst, "b.txt")); err == nil {
		t.Fatal("glob download took a non-matching file")
	}
	// A link in the image is copied as a link (cp -R), never read through.
	if fi, err := os.Lstat(filepath.Join(dst, "c.log")); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("c.log: %v %v: an image link must arrive as a link", fi, err)
	}
	dst2 := t.TempDir()
	if err := c.DownloadDir("/var/log/", dst2, nil); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dst2, "b.txt")); string(b) != "b" {
		t.Fatal("DownloadDir of dir/ lost a file")
	}
}

// hostChroot is a minimal chroot running the host's own binaries: /usr
// bound read-only, the usual merged-/usr links.
func hostChroot(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("needs root; make test runs as root")
	}
	work := t.TempDir()
	t.Cleanup(func() { mount.CleanUnder(work) })
	root := filepath.Join(work, "rootfs")
	os.MkdirAll(filepath.Join(root, "usr"), 0o755)
	os.MkdirAll(filepath.Join(root, "tmp"), 0o1777)
	for _, l := range []string{"bin", "lib", "lib64", "sbin"} {
		if target, err := os.Readlink("/" + l); err == nil {
			os.Symlink(target, filepath.Join(root, l))
		}
	}
	if err := mount.Mount(mount.Spec{FSType: "bind", Source: "/usr", Target: filepath.Join(root, "usr"), Options: "ro"}); err != nil {
		t.Fatal(err)
	}
	return root
}

// neverEOF is a stdin that yields its data and then never returns again,
// like Packer's SSH proxy stream for the ansible provisioner.
type neverEOF struct {
	data []byte
	done chan struct{}
}

func (n *neverEOF) Read(p []byte) (int, error) {
	if len(n.data) > 0 {
		k := copy(p, n.data)
		n.data = n.data[k:]
		return k, nil
	}
	<-n.done
	return 0, io.EOF
}

// TestStartEndsWhenProcessExits: a command's end is its process's exit,
// whatever its stdin does.
func TestStartEndsWhenProcessExits(t *testing.T) {
	root := hostChroot(t)
	c := testComm(t, root)
	stdin := &neverEOF{data: []byte("from stdin\n"), done: make(chan struct{})}
	defer close(stdin.done)
	var out bytes.Buffer
	rc := &packersdk.RemoteCmd{Command: "head -n1; echo done", Stdin: stdin, Stdout: &out, Stderr: &out}
	start := time.Now()
	if err := c.Start(context.Background(), rc); err != nil {
		t.Fatal(err)
	}
	finished := make(chan int, 1)
	go func() { finished <- rc.Wait() }()
	select {
	case code := <-finished:
		if code != 0 || out.String() != "from stdin\ndone\n" {
			t.Fatalf("exit %d, output %q", code, out.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("the command never ended (stdin never reaches EOF); output so far %q", out.String())
	}
	t.Logf("ended after %s", time.Since(start))
}

// TestEnvironmentOnlyInsideChroot: environment (PATH too) reaches the
// command in the chroot, the host side is not run with it, and what a
// command_wrapper sets still reaches the chroot.
func TestEnvironmentOnlyInsideChroot(t *testing.T) {
	root := hostChroot(t)
	c := testComm(t, root)
	c.Env = chrootEnv(map[string]string{"PATH": "/usr/bin:/bin", "STRATA_X": "inside"})
	t.Setenv("HOST_ONLY", "leaked")
	if got := runCmd(t, c, `echo "$PATH $STRATA_X"; test -z "$HOST_ONLY" && echo clean`); got != "/usr/bin:/bin inside\nclean\n" {
		t.Fatalf("chroot saw %q", got)
	}
	// LD_PRELOAD of a library that does not exist would break every host
	// program the wrapper runs if it reached the host side.
	c.Env = chrootEnv(map[string]string{"LD_PRELOAD": "/nonexistent/libx.so"})
	c.Wrap = func(cmd string) (string, error) { return "env WRAPPED=yes " + cmd, nil }
	if got := runCmd(t, c, `echo "$WRAPPED"`); !strings.HasSuffix(got, "yes\n") {
		t.Fatalf("wrapper variable lost or host broken: %q", got)
	}
	// A PATH that names nothing useful on the host still works: chroot and
	// env are run by absolute path.
	c.Env = chrootEnv(map[string]string{"PATH": "/nonexistent:/usr/bin"})
	if got := runCmd(t, c, "echo ok"); got != "ok\n" {
		t.Fatalf("%q", got)
	}
}

// runCmd runs cmd through c and returns its output.
func runCmd(t *testing.T, c *Communicator, cmd string) string {
	t.Helper()
	var out bytes.Buffer
	rc := &packersdk.RemoteCmd{Command: cmd, Stdout: &out, Stderr: &out}
	if err := c.Start(context.Background(), rc); err != nil {
		t.Fatal(err)
	}
	if code := rc.Wait(); code != 0 {
		t.Fatalf("%s: exit %d: %s", cmd, code, out.String())
	}
	return out.String()
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
}
