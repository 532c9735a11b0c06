package chroot

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPlanMountsOrderAndTargets(t *testing.T) {
	root := imageRoot(t)
	hostTarget := t.TempDir()
	// An image symlink that points at an absolute host path must resolve inside the image.
	os.Symlink(hostTarget, filepath.Join(root, "mnt"))
	file := filepath.Join(t.TempDir(), "f")
	os.WriteFile(file, nil, 0o644)
	plan, err := planMounts(root, []MountConfig{
		{Type: "tmpfs", Source: "tmpfs", Target: "/var/tmp/x", Options: "size=1m"},
		{Type: "bind", Source: file, Target: "/mnt/file"},
	})
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, m := range plan {
		order = append(order, m.InImage)
		if !strings.HasPrefix(m.Target, root+"/") {
			t.Errorf("%s resolves outside the root: %s", m.InImage, m.Target)
		}
	}
	want := "/proc /sys /dev /dev/pts /dev/ptmx /dev/shm /run /var/tmp/x /mnt/file"
	if strings.Join(order, " ") != want {
		t.Fatalf("order %v\nwant  %s", order, want)
	}
	last := plan[len(plan)-1]
	if last.Target != filepath.Join(root, hostTarget, "file") || !last.File {
		t.Fatalf("bind target %s (file=%v), want it inside the image", last.Target, last.File)
	}
	if plan[3].FSType != "devpts" || !strings.Contains(plan[3].Options, "newinstance") {
		t.Fatalf("dev/pts must be its own devpts instance: %+v", plan[3])
	}
	if plan[2].Source != "/dev" || plan[2].FSType != "bind" || !strings.HasPrefix(plan[2].Options, "ro") {
		t.Fatalf("dev must bind the host's /dev read-only: %+v", plan[2])
	}
}
