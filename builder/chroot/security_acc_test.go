package chroot

// End-to-end tests of the trust boundary: an image, a template or another
// user of the build host must never reach the host through the builder.
// Canary paths live only under each test's temp dir.

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/strata-build/packer-plugin-strata/export"
	"github.com/strata-build/packer-plugin-strata/internal/acctest"
	"github.com/strata-build/packer-plugin-strata/internal/mount"
)

// makeArchive unpacks the base image, lets modify change the tree, and
// packs it as a plain tar (sparse files kept sparse).
func makeArchive(t *testing.T, modify func(tree string)) string {
	t.Helper()
	tree := unpack(t, baseArchive(t))
	modify(tree)
	archive := filepath.Join(t.TempDir(), "image.tar")
	acctest.RunIn(t, tree, "tar", "-cpf", archive, "--sparse", "--numeric-owner", "--xattrs", "--xattrs-include=*", ".")
	return archive
}

// TestAccHostileMountTargets: an image whose /run leads to the host (through
// /proc's magic links, or by climbing out with ../) gets no mount there; the
// build fails clearly and leaves nothing mounted.
func TestAccHostileMountTargets(t *testing.T) {
	e := acctest.Setup(t)
	for name, link := range map[string]func(canary string) string{
		"proc self root": func(canary string) string { return "/proc/self/root" + canary },
		"dot dot":        func(canary string) string { return "../../../../../../../../.." + canary },
	} {
		t.Run(name, func(t *testing.T) {
			canary := t.TempDir()
			archive := makeArchive(t, func(tree string) {
				os.RemoveAll(filepath.Join(tree, "run"))
				os.Symlink(link(canary), filepath.Join(tree, "run"))
			})
			vars := archiveVars(t, archive, "true")
			r := e.Build(t, t.TempDir(), acctest.Fixture("archive.pkr.hcl"), vars)
			if r.Code == 0 {
				t.Fatalf("a build with a hostile /run succeeded:\n%s", r.Output())
			}
			if !strings.Contains(r.Output(), "mounting /run") {
				t.Errorf("the error does not say which mount:\n%s", r.Output())
			}
			if ms, _ := mount.Under(canary); len(ms) > 0 {
				t.Fatalf("a mount landed on the host: %+v", ms)
			}
			if ents, _ := os.ReadDir(canary); len(ents) > 0 {
				t.Fatalf("the build created %v on the host", ents)
			}
			acctest.AssertClean(t, vars["store_dir"])
		})
	}
}

// TestAccAttacksFromImageAndOtherUsers runs attack.pkr.hcl: an unprivileged
// process in the image races for the shell provisioner's script, and the
// host's nobody user tries the work dir, the image's /tmp and the store.
func TestAccAttacksFromImageAndOtherUsers(t *testing.T) {
	e := acctest.Setup(t)
	store := filepath.Join(acctest.Scratch(t), "store")
	r := e.Build(t, t.TempDir(), acctest.Fixture("attack.pkr.hcl"), map[string]string{"store_dir": store, "archive": baseArchive(t)})
	if r.Code != 0 || !strings.Contains(r.Output(), "host attacks refused") {
		t.Fatalf("exit %d:\n%s", r.Code, r.Output())
	}
	list := acctest.RunIn(t, r.Dir, "tar", "-tf", filepath.Join(r.Dir, "output-attack", "rootfs.tar"))
	if !strings.Contains(list, "./root/legit") || strings.Contains(list, "pwned") {
		t.Fatalf("the provisioner's own script did not run, or the attacker's did:\n%s", list)
	}
	for _, p := range []string{store, filepath.Join(store, "work"), filepath.Join(store, "cache", "apt")} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s is open to other users: %v %v", p, fi.Mode(), err)
		}
	}
	acctest.AssertClean(t, store)
}

// TestAccStoreOwnedByAnotherUser: a store another user owns (or can write)
// is refused before anything is created.
func TestAccStoreOwnedByAnotherUser(t *testing.T) {
	e := acctest.Setup(t)
	for name, setup := range map[string]func(string){
		"owned by nobody": func(d string) { os.Chown(d, 65534, 65534) },
		"world writable":  func(d string) { os.Chmod(d, 0o777) },
	} {
		t.Run(name, func(t *testing.T) {
			vars := archiveVars(t, baseArchive(t), "true")
			os.MkdirAll(vars["store_dir"], 0o700)
			setup(vars["store_dir"])
			r := e.Build(t, t.TempDir(), acctest.Fixture("archive.pkr.hcl"), vars)
			if r.Code == 0 || !strings.Contains(r.Output(), "store_dir:") {
				t.Fatalf("accepted (exit %d):\n%s", r.Code, r.Output())
			}
			if ents, _ := os.ReadDir(vars["store_dir"]); len(ents) != 0 {
				t.Fatalf("the refused build wrote %v into the store", ents)
			}
		})
	}
}

// TestAccOverlappingDirsRefused: output_dir on the store, or inside the
// work dir, is refused before the host is touched, -force or not.
func TestAccOverlappingDirsRefused(t *testing.T) {
	e := acctest.Setup(t)
	vars := archiveVars(t, baseArchive(t), "true")
	store := vars["store_dir"]
	os.MkdirAll(filepath.Join(store, "cache", "apt"), 0o700)
	os.WriteFile(filepath.Join(store, "catalog.db"), []byte("the catalog"), 0o600)
	for name, out := range map[string]string{
		"output is the store":        store,
		"output inside the work dir": filepath.Join(store, "work", "app", "out"),
	} {
		t.Run(name, func(t *testing.T) {
			v := map[string]string{}
			for k, x := range vars {
				v[k] = x
			}
			v["output_dir"] = out
			r := e.Build(t, t.TempDir(), acctest.Fixture("archive.pkr.hcl"), v, "-force")
			if r.Code == 0 || !strings.Contains(r.Output(), "output_dir") || !strings.Contains(r.Output(), "overlaps") {
				t.Fatalf("accepted (exit %d):\n%s", r.Code, r.Output())
			}
			if b, err := os.ReadFile(filepath.Join(store, "catalog.db")); err != nil || string(b) != "the catalog" {
				t.Fatal("the catalog was touched")
			}
			if _, err := os.Stat(filepath.Join(store, "cache", "apt")); err != nil {
				t.Fatal("the package cache was touched")
			}
		})
	}
}

// TestAccRecoveryTouchesOnlyItsOwn: a build pointed at a directory holding
// another running build's work dir is refused and disturbs nothing; a mount
// a user made in a work dir is never unmounted by a build.
func TestAccRecoveryTouchesOnlyItsOwn(t *testing.T) {
	e := acctest.Setup(t)
	archive := baseArchive(t)
	parent := filepath.Join(acctest.Scratch(t), "builds")
	os.MkdirAll(parent, 0o700)
	running := archiveVars(t, archive, "touch /tmp/provisioning", "sleep 600")
	running["work_dir"] = filepath.Join(parent, "a")
	r := e.Start(t, t.TempDir(), acctest.Fixture("archive.pkr.hcl"), running)
	r.WaitForFile(t, filepath.Join(parent, "a", "rootfs", "tmp", "provisioning"))
	before, _ := mount.Under(parent)

	for name, workDir := range map[string]string{
		"parent of a running build's work dir": parent,
		"every build's work dir":               filepath.Join(running["store_dir"], "work"),
		"the store itself":                     running["store_dir"],
	} {
		t.Run(name, func(t *testing.T) {
			v := archiveVars(t, archive, "true")
			v["store_dir"] = running["store_dir"]
			v["work_dir"] = workDir
			b := e.Build(t, t.TempDir(), acctest.Fixture("archive.pkr.hcl"), v)
			if b.Code == 0 || !strings.Contains(b.Output(), "work_dir") {
				t.Fatalf("accepted (exit %d):\n%s", b.Code, b.Output())
			}
		})
	}
	if after, _ := mount.Under(parent); len(after) != len(before) {
		t.Fatalf("the running build lost mounts: %d -> %d", len(before), len(after))
	}
	if pids, _ := mount.RootedUnder(filepath.Join(parent, "a", "rootfs")); len(pids) == 0 {
		t.Fatal("the running build's provisioner was killed")
	}
	syscall.Kill(-r.Cmd.Process.Pid, syscall.SIGINT)
	r.Wait(t, 2*time.Minute)
	acctest.AssertClean(t, parent)

	// A user's own mount inside a work dir: refused, left mounted.
	userMnt := filepath.Join(parent, "a", "usermnt")
	os.MkdirAll(userMnt, 0o755)
	if err := mount.Mount(mount.Spec{FSType: "tmpfs", Source: "user", Target: userMnt}); err != nil {
		t.Fatal(err)
	}
	defer mount.Unmount(userMnt, 3, 10*time.Millisecond)
	v := archiveVars(t, archive, "true")
	v["store_dir"], v["work_dir"] = running["store_dir"], filepath.Join(parent, "a")
	b := e.Build(t, t.TempDir(), acctest.Fixture("archive.pkr.hcl"), v)
	if b.Code == 0 || !strings.Contains(b.Output(), "did not make") {
		t.Fatalf("a build next to a user's mount ran (exit %d):\n%s", b.Code, b.Output())
	}
	if ms, _ := mount.Under(userMnt); len(ms) != 1 {
		t.Fatal("the build unmounted the user's tmpfs")
	}
}

// killPacker SIGKILLs packer (both processes) and the plugin, as a crash or
// `kill -9` would, leaving the chroot's own processes.
func killPacker(t *testing.T, r *acctest.Proc) {
	t.Helper()
	plugins := pluginPIDs(r.Cmd.Process.Pid)
	if len(plugins) == 0 {
		t.Fatal("no plugin process found under packer")
	}
	for _, p := range append(plugins, packerPIDs(r.Cmd.Process.Pid)...) {
		syscall.Kill(p, syscall.SIGKILL)
	}
	r.Wait(t, time.Minute)
}

// TestAccKilledBuildWithHostBindThenForce: a killed build leaves a
// read-write bind of a host directory; the next build with -force cleans the
// mounts before it deletes anything, so the host files survive.
func TestAccKilledBuildWithHostBindThenForce(t *testing.T) {
	e := acctest.Setup(t)
	hostDir := t.TempDir()
	os.WriteFile(filepath.Join(hostDir, "precious"), []byte("keep me"), 0o644)
	vars := archiveVars(t, baseArchive(t), "touch /tmp/provisioning", "sleep 600")
	vars["bind_src"] = hostDir
	dir := t.TempDir()
	r := e.Start(t, dir, acctest.Fixture("archive.pkr.hcl"), vars)
	r.WaitForFile(t, filepath.Join(vars["store_dir"], "work", "app", "rootfs", "tmp", "provisioning"))
	killPacker(t, r)
	if ms, _ := mount.Under(vars["store_dir"]); len(ms) == 0 {
		t.Fatal("expected the killed build's mounts to be left")
	}
	vars2 := map[string]string{}
	for k, v := range vars {
		vars2[k] = v
	}
	vars2["inline"] = `["true"]`
	r2 := e.Build(t, dir, acctest.Fixture("archive.pkr.hcl"), vars2, "-force")
	if r2.Code != 0 || !strings.Contains(r2.Output(), "Cleaned up after an earlier build") {
		t.Fatalf("the forced rebuild: exit %d\n%s", r2.Code, r2.Output())
	}
	if b, err := os.ReadFile(filepath.Join(hostDir, "precious")); err != nil || string(b) != "keep me" {
		t.Fatalf("a host file behind the bind mount was lost: %q %v", b, err)
	}
	acctest.AssertClean(t, vars["store_dir"])
}

// TestAccManifestIsTheImages: an image whose /var/lib/dpkg is an absolute
// symlink to a host directory gets no package manifest, never the host's.
func TestAccManifestIsTheImages(t *testing.T) {
	e := acctest.Setup(t)
	hostDpkg := t.TempDir()
	os.WriteFile(filepath.Join(hostDpkg, "status"), []byte("Package: host-canary\nStatus: install ok installed\nVersion: 1\nArchitecture: all\n\n"), 0o644)
	archive := makeArchive(t, func(tree string) {
		os.RemoveAll(filepath.Join(tree, "var/lib/dpkg"))
		os.Symlink(hostDpkg, filepath.Join(tree, "var/lib/dpkg"))
	})
	vars := archiveVars(t, archive, "true")
	vars["formats"] = `["tar"]`
	dir := t.TempDir()
	r := e.Build(t, dir, acctest.Fixture("archive.pkr.hcl"), vars)
	if r.Code != 0 {
		t.Fatalf("exit %d:\n%s", r.Code, r.Output())
	}
	if b, err := os.ReadFile(filepath.Join(dir, "output-app", export.PackagesName)); err == nil && strings.Contains(string(b), "host-canary") {
		t.Fatal("the manifest lists the host's packages")
	}
	if !strings.Contains(r.Output(), "no package manifest") && !strings.Contains(r.Output(), "Package manifest") {
		t.Errorf("nothing said about the manifest:\n%s", r.Output())
	}
}

// pidsNamed lists processes whose command name is name.
func pidsNamed(name string) []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "comm")); err == nil && strings.TrimSpace(string(b)) == name {
			pids = append(pids, pid)
		}
	}
	return pids
}

// TestAccChildrenDieWithPlugin: a plugin killed during the export leaves no
// mksquashfs still writing into the output dir, and the next build with the
// work dir removes the half-written file.
func TestAccChildrenDieWithPlugin(t *testing.T) {
	e := acctest.Setup(t)
	if len(pidsNamed("mksquashfs")) > 0 {
		t.Fatal("a mksquashfs is already running on this host")
	}
	vars := archiveVars(t, baseArchive(t), "true")
	vars["formats"] = `["squashfs"]`
	vars["squashfs_compression"] = "xz" // slow enough to be caught at work
	out1 := filepath.Join(t.TempDir(), "out1")
	vars["output_dir"] = out1
	r := e.Start(t, t.TempDir(), acctest.Fixture("archive.pkr.hcl"), vars)
	// Killed once mksquashfs is at work: running, with its output file made
	// (it makes the file only after it started, so the process alone is not
	// enough).
	tmp := filepath.Join(out1, ".rootfs.squashfs.tmp")
	deadline := time.Now().Add(3 * time.Minute)
	for {
		if len(pidsNamed("mksquashfs")) > 0 {
			if _, err := os.Stat(tmp); err == nil {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("mksquashfs never started writing %s:\n%s", tmp, r.Output())
		}
		time.Sleep(20 * time.Millisecond)
	}
	killPacker(t, r)
	deadline = time.Now().Add(5 * time.Second)
	for len(pidsNamed("mksquashfs")) > 0 {
		if time.Now().After(deadline) {
			t.Fatal("mksquashfs outlived the plugin")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := os.Stat(tmp); err != nil {
		t.Fatalf("expected the killed export's temporary file: %v", err)
	}
	vars["output_dir"] = filepath.Join(t.TempDir(), "out2")
	vars["formats"] = `["tar"]`
	r2 := e.Build(t, t.TempDir(), acctest.Fixture("archive.pkr.hcl"), vars)
	if r2.Code != 0 || !strings.Contains(r2.Output(), "removed 1 unfinished file") {
		t.Fatalf("exit %d:\n%s", r2.Code, r2.Output())
	}
	if _, err := os.Stat(tmp); !os.IsNotExist(err) {
		t.Fatal("the half-written squashfs is still there")
	}
	acctest.AssertClean(t, vars["store_dir"])
}
