package chroot

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
	"golang.org/x/sys/unix"

	"github.com/strata-build/packer-plugin-strata/internal/inroot"
	"github.com/strata-build/packer-plugin-strata/internal/mount"
)

// hostWithResolvConf is the real host with its own resolv.conf in a temp
// dir, so that a write to the host's file would be seen.
func hostWithResolvConf(t *testing.T) (h host, hostFile string, content []byte) {
	t.Helper()
	dir := t.TempDir()
	hostFile = filepath.Join(dir, "etc/resolv.conf")
	content = []byte("nameserver 192.0.2.53\n")
	if err := os.MkdirAll(filepath.Dir(hostFile), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(hostFile, content, 0o644); err != nil {
		t.Fatal(err)
	}
	return osHost{root: dir}, hostFile, content
}

func imageRoot(t *testing.T) string {
	root := filepath.Join(t.TempDir(), "rootfs")
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	return root
}

// openRoot holds an image root open for the handle-based helpers.
func openRoot(t *testing.T, dir string) *inroot.Root {
	t.Helper()
	r, err := inroot.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// testLedger is a ledger in a scratch work dir.
func testLedger(t *testing.T) *mount.Ledger {
	t.Helper()
	l, err := mount.NewLedger(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return l
}

type pathState struct {
	exists bool
	link   string
	data   []byte
	mode   uint32
	uid    uint32
	mtime  int64
}

func stateOf(t *testing.T, p string) pathState {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		return pathState{}
	}
	s := pathState{exists: true, mode: st.Mode, uid: st.Uid, mtime: st.Mtim.Nano()}
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		s.link, _ = os.Readlink(p)
	} else {
		s.data, _ = os.ReadFile(p)
	}
	return s
}

func TestResolvConfModes(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("needs root (bind mounts); make test runs as root")
	}
	setups := map[string]func(t *testing.T, root, hostFile string){
		"missing": func(t *testing.T, root, hostFile string) {},
		"file": func(t *testing.T, root, hostFile string) {
			p := filepath.Join(root, "etc/resolv.conf")
			os.WriteFile(p, []byte("nameserver 127.0.0.53\n"), 0o600)
			os.Lchown(p, 0, 42)
			old := time.Unix(1000000, 0)
			os.Chtimes(p, old, old)
		},
		"relative symlink": func(t *testing.T, root, hostFile string) {
			os.MkdirAll(filepath.Join(root, "run/systemd/resolve"), 0o755)
			os.Symlink("../run/systemd/resolve/stub-resolv.conf", filepath.Join(root, "etc/resolv.conf"))
		},
		// The dangerous one: followed on the host, this link is the host's file.
		"absolute symlink to a host path": func(t *testing.T, root, hostFile string) {
			os.Symlink(hostFile, filepath.Join(root, "etc/resolv.conf"))
		},
		"dangling absolute symlink": func(t *testing.T, root, hostFile string) {
			os.Symlink("/run/systemd/resolve/stub-resolv.conf", filepath.Join(root, "etc/resolv.conf"))
		},
	}
	for _, mode := range []string{"copy-host", "bind-host"} {
		for name, setup := range setups {
			t.Run(mode+"/"+name, func(t *testing.T) {
				h, hostFile, hostContent := hostWithResolvConf(t)
				root := imageRoot(t)
				setup(t, root, hostFile)
				p := filepath.Join(root, "etc/resolv.conf")
				before := stateOf(t, p)
				etcBefore := stateOf(t, filepath.Join(root, "etc"))

				restore, err := useHostResolvConf(h, openRoot(t, root), testLedger(t), mode)
				if err != nil {
					t.Fatal(err)
				}
				during := stateOf(t, p)
				if during.link != "" || !bytes.Equal(during.data, hostContent) {
					t.Fatalf("during the build the image's resolv.conf is %+v, want the host's content", during)
				}
				if mode == "bind-host" {
					if ms, _ := mount.Under(root); len(ms) != 1 {
						t.Fatalf("bind-host: want one mount, have %+v", ms)
					}
					if err := os.WriteFile(p, []byte("x"), 0o644); err == nil {
						t.Fatal("bind-host mount is writable")
					}
				}
				if err := restore(packersdk.TestUi(t)); err != nil {
					t.Fatal(err)
				}
				after := stateOf(t, p)
				if etcAfter := stateOf(t, filepath.Join(root, "etc")); etcAfter.mtime != etcBefore.mtime {
					t.Fatalf("/etc's mtime changed: %d -> %d", etcBefore.mtime, etcAfter.mtime)
				}
				if before.exists != after.exists || before.link != after.link || !bytes.Equal(before.data, after.data) ||
					before.mode != after.mode || before.uid != after.uid || (before.exists && before.mtime != after.mtime) {
					t.Fatalf("not restored exactly:\nbefore %+v\nafter  %+v", before, after)
				}
				if got, _ := os.ReadFile(hostFile); !bytes.Equal(got, hostContent) {
					t.Fatalf("the host's resolv.conf was written: %q", got)
				}
				if err := mount.Verify(filepath.Dir(root)); err != nil {
					t.Fatal(err)
				}
			})
		}
	}
}

func TestResolvConfImageWithoutEtc(t *testing.T) {
	h, _, _ := hostWithResolvConf(t)
	root := t.TempDir()
	if _, err := useHostResolvConf(h, openRoot(t, root), testLedger(t), "copy-host"); err == nil {
		t.Fatal("want an error for an image without /etc")
	}
}

func TestPolicyRcDSavedAndRestored(t *testing.T) {
	root := imageRoot(t)
	os.MkdirAll(filepath.Join(root, "usr/sbin"), 0o755)
	p := filepath.Join(root, "usr/sbin/policy-rc.d")
	for _, existing := range []bool{false, true} {
		os.Remove(p)
		if existing {
			os.WriteFile(p, []byte("#!/bin/sh\nexit 0\n"), 0o755)
		}
		before := stateOf(t, p)
		saved, err := savePath(openRoot(t, root), "/usr/sbin/policy-rc.d")
		if err != nil {
			t.Fatal(err)
		}
		if err := saved.replace([]byte(policyRcD), 0o755); err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(p); string(got) != policyRcD {
			t.Fatalf("policy-rc.d not installed: %q", got)
		}
		if kept, err := saved.restore(); err != nil || kept {
			t.Fatalf("restore: kept=%v err=%v", kept, err)
		}
		if after := stateOf(t, p); after.exists != before.exists || !bytes.Equal(after.data, before.data) {
			t.Fatalf("existing=%v: not restored: %+v", existing, after)
		}
	}
}

// TestSavePathResolvesInsideRoot: a symlinked directory in the image that
// points at an absolute path resolves inside the image, not on the host.
func TestSavePathResolvesInsideRoot(t *testing.T) {
	root := imageRoot(t)
	hostDir := t.TempDir()
	os.MkdirAll(filepath.Join(root, "usr/sbin"), 0o755)
	os.MkdirAll(filepath.Join(root, hostDir), 0o755)
	os.RemoveAll(filepath.Join(root, "usr/sbin"))
	os.Symlink(hostDir, filepath.Join(root, "usr/sbin"))
	saved, err := savePath(openRoot(t, root), "/usr/sbin/policy-rc.d")
	if err != nil {
		t.Fatal(err)
	}
	if err := saved.replace([]byte("x"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(hostDir, "policy-rc.d")); err == nil {
		t.Fatal("wrote through an absolute symlink onto the host")
	}
	if _, err := os.Stat(filepath.Join(root, hostDir, "policy-rc.d")); err != nil {
		t.Fatalf("not written inside the image: %v", err)
	}
	saved.restore()
}

// TestResolvConfProvisionerWins: a provisioner that replaces the builder's
// copy (installing resolvconf links it into /run, another writes its own
// nameserver) keeps its version; the builder's temporary copy alone is
// taken back.
func TestResolvConfProvisionerWins(t *testing.T) {
	h, _, _ := hostWithResolvConf(t)
	for name, change := range map[string]func(p string){
		"own file": func(p string) { os.Remove(p); os.WriteFile(p, []byte("nameserver 10.9.9.9\n"), 0o644) },
		"rewritten in place": func(p string) {
			f, _ := os.OpenFile(p, os.O_WRONLY|os.O_TRUNC, 0)
			f.WriteString("nameserver 10.8.8.8\n")
			f.Close()
		},
		"resolvconf link": func(p string) { os.Remove(p); os.Symlink("../run/resolvconf/resolv.conf", p) },
	} {
		t.Run(name, func(t *testing.T) {
			root := imageRoot(t)
			p := filepath.Join(root, "etc/resolv.conf")
			os.WriteFile(p, []byte("nameserver 127.0.0.1\n"), 0o644)
			restore, err := useHostResolvConf(h, openRoot(t, root), testLedger(t), "copy-host")
			if err != nil {
				t.Fatal(err)
			}
			change(p)
			want := stateOf(t, p)
			if err := restore(packersdk.TestUi(t)); err != nil {
				t.Fatal(err)
			}
			if got := stateOf(t, p); got.link != want.link || !bytes.Equal(got.data, want.data) {
				t.Fatalf("the provisioner's resolv.conf was reverted: %+v, want %+v", got, want)
			}
		})
	}
}

// TestSavePathReplacesNotWritesThrough: a file the image prepared at the
// path (held open by someone, or hard-linked elsewhere) never sees the
// builder's content: the path is replaced by a rename.
func TestSavePathReplacesNotWritesThrough(t *testing.T) {
	root := imageRoot(t)
	p := filepath.Join(root, "etc/resolv.conf")
	os.WriteFile(p, []byte("theirs"), 0o666)
	other := filepath.Join(root, "other-name")
	os.Link(p, other)
	saved, err := savePath(openRoot(t, root), "/etc/resolv.conf")
	if err != nil {
		t.Fatal(err)
	}
	if err := saved.replace([]byte("ours"), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(other); string(b) != "theirs" {
		t.Fatalf("the builder wrote through a hard link: %q", b)
	}
	if _, err := saved.restore(); err != nil {
		t.Fatal(err)
	}
}
