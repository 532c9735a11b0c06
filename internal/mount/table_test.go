package mount

import (
	"golang.org/x/sys/unix"

	"bufio"
	"strings"
	"testing"
)

const sampleMountInfo = `21 26 0:20 / /proc rw,relatime - proc proc rw
26 1 254:0 / / rw,relatime - ext4 /dev/vda rw
90 26 0:50 / /var/lib/strata/work/base/rootfs/proc rw - proc proc rw
91 26 0:6 / /var/lib/strata/work/base/rootfs/dev rw - devtmpfs devtmpfs rw
92 91 0:51 / /var/lib/strata/work/base/rootfs/dev/pts rw - devpts devpts rw
93 26 0:52 / /var/lib/strata/work/base2/rootfs/proc rw - proc proc rw
94 26 0:53 / /var/lib/strata/work/base/with\040space rw - tmpfs tmp\134fs rw
`

func TestParseMountInfo(t *testing.T) {
	all, err := parseMountInfo(bufio.NewScanner(strings.NewReader(sampleMountInfo)))
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 7 {
		t.Fatalf("parsed %d mounts, want 7", len(all))
	}
	last := all[6]
	if last.MountPoint != "/var/lib/strata/work/base/with space" || last.Source != `tmp\fs` || last.FSType != "tmpfs" {
		t.Fatalf("octal escapes not undone: %+v", last)
	}
	if all[4].ParentID != 91 || all[4].ID != 92 {
		t.Fatalf("ids: %+v", all[4])
	}
}

func TestParseMountInfoMalformed(t *testing.T) {
	if _, err := parseMountInfo(bufio.NewScanner(strings.NewReader("garbage line\n"))); err == nil {
		t.Fatal("want an error for a malformed line")
	}
}

func TestUnderOrderAndBoundaries(t *testing.T) {
	all, _ := parseMountInfo(bufio.NewScanner(strings.NewReader(sampleMountInfo)))
	got := under(all, "/var/lib/strata/work/base")
	var pts []string
	for _, m := range got {
		pts = append(pts, m.MountPoint)
	}
	want := []string{
		"/var/lib/strata/work/base/rootfs/dev/pts", // deepest first
		"/var/lib/strata/work/base/rootfs/dev",     // same depth: latest first
		"/var/lib/strata/work/base/rootfs/proc",
		"/var/lib/strata/work/base/with space",
	}
	if strings.Join(pts, "|") != strings.Join(want, "|") {
		t.Fatalf("under = %v\nwant    %v", pts, want)
	}
	for _, m := range got {
		if strings.Contains(m.MountPoint, "base2") {
			t.Fatal("a sibling dir with the same prefix was counted as below")
		}
	}
}

func TestIsWithin(t *testing.T) {
	cases := []struct {
		dir, p string
		want   bool
	}{
		{"/a/b", "/a/b", true},
		{"/a/b", "/a/b/c", true},
		{"/a/b", "/a/bc", false},
		{"/a/b", "/a", false},
		{"/", "/x", true},
	}
	for _, c := range cases {
		if got := isWithin(c.dir, c.p); got != c.want {
			t.Errorf("isWithin(%q, %q) = %v", c.dir, c.p, got)
		}
	}
}

func TestSplitOptions(t *testing.T) {
	flags, data := splitOptions("ro,nosuid,size=10m,mode=0755")
	if data != "size=10m,mode=0755" {
		t.Fatalf("data = %q", data)
	}
	if flags == 0 {
		t.Fatal("ro,nosuid gave no flags")
	}
}

// A path with an escaped comma stays one option, even when what follows the
// comma reads like a flag.
func TestSplitOptionsKeepsEscapedCommas(t *testing.T) {
	flags, data := splitOptions(`ro,lowerdir=/s/a\,ro:/s/b\:c,redirect_dir=off`)
	if data != `lowerdir=/s/a\,ro:/s/b\:c,redirect_dir=off` || flags != unix.MS_RDONLY {
		t.Fatalf("flags %#x, data %q", flags, data)
	}
}
