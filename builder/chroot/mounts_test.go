package chroot

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strata-build/packer-plugin-strata/internal/mount"
)

func TestPlanMountsOrder(t *testing.T) {
	file := filepath.Join(t.TempDir(), "f")
	os.WriteFile(file, nil, 0o644)
	plan := planMounts([]MountConfig{
		{Type: "tmpfs", Source: "tmpfs", Target: "/var/tmp/x/", Options: "size=1m"},
		{Type: "bind", Source: file, Target: "/mnt/file"},
	})
	var order []string
	for _, m := range plan {
		order = append(order, m.Target)
	}
	want := "/proc /sys /dev /dev/pts /dev/ptmx /dev/shm /run /var/tmp/x /mnt/file"
	if strings.Join(order, " ") != want {
		t.Fatalf("order %v\nwant  %s", order, want)
	}
	if !plan[len(plan)-1].File || plan[len(plan)-1].Own {
		t.Fatalf("a bind of a file is a file mount and not the builder's own: %+v", plan[len(plan)-1])
	}
	if plan[3].FSType != "devpts" || !strings.Contains(plan[3].Options, "newinstance") {
		t.Fatalf("dev/pts must be its own devpts instance: %+v", plan[3])
	}
	if plan[2].Source != "/dev" || plan[2].FSType != "bind" || !strings.HasPrefix(plan[2].Options, "ro") {
		t.Fatalf("dev must bind the host's /dev read-only: %+v", plan[2])
	}
}

// TestMountInImageStaysInRoot makes mounts in an image whose symlinks point
// at host paths, the /proc/self/root way included: every mount lands inside
// the root or is refused, and nothing is mounted on the host path.
func TestMountInImageStaysInRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("needs root; make test runs as root")
	}
	work := t.TempDir()
	t.Cleanup(func() { mount.CleanUnder(work) })
	root := filepath.Join(work, "rootfs")
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	canary := t.TempDir()
	ledger := testLedger(t)
	r := openRoot(t, root)

	// /proc first, as the builder does, so that /proc/self/root exists.
	if _, err := mountInImage(osHost{}, r, ledger, plannedMount{Spec: mount.Spec{FSType: "proc", Source: "proc", Target: "/proc"}, Own: true}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, link string
		m          plannedMount
	}{
		{"run via /proc/self/root", "/proc/self/root" + canary, plannedMount{Spec: mount.Spec{FSType: "tmpfs", Source: "run", Target: "/run"}, Own: true}},
		{"absolute host link", canary, plannedMount{Spec: mount.Spec{FSType: "tmpfs", Source: "x", Target: "/mnt/x"}}},
		{"into the builder's proc", "/proc/sys", plannedMount{Spec: mount.Spec{FSType: "tmpfs", Source: "x", Target: "/opt/x"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Dir(c.m.Target)
			if c.m.Own {
				dir = c.m.Target
			}
			os.RemoveAll(filepath.Join(root, dir))
			os.MkdirAll(filepath.Dir(filepath.Join(root, dir)), 0o755)
			if err := os.Symlink(c.link, filepath.Join(root, dir)); err != nil {
				t.Fatal(err)
			}
			made, err := mountInImage(osHost{}, r, ledger, c.m)
			if ms, _ := mount.Under(canary); len(ms) > 0 {
				t.Fatalf("mounted on the host: %+v", ms)
			}
			if err == nil {
				if !strings.HasPrefix(made.Target, root+"/") || underBuilderMount(r.InImage(made.Target)) != "" {
					t.Fatalf("mount landed at %s", made.Target)
				}
				mount.UnmountOwned([]mount.MountRecord{made.MountRecord})
			}
		})
	}
}
