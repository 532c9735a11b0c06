package chroot

// End-to-end tests of what users of amazon-chroot and the ARM image
// builders expect: JSON templates with the full template context, cp-like
// uploads, a provisioner's own resolv.conf, a named mount_path.

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strata-build/packer-plugin-strata/internal/acctest"
	"github.com/strata-build/packer-plugin-strata/internal/mount"
)

func TestAccJSONTemplateContext(t *testing.T) {
	e := acctest.Setup(t)
	store := filepath.Join(acctest.Scratch(t), "store")
	markers := t.TempDir()
	dir := t.TempDir()
	r := e.Build(t, dir, acctest.Fixture("compat.json"), map[string]string{"store_dir": store, "archive": baseArchive(t), "marker_dir": markers})
	if r.Code != 0 {
		t.Fatalf("exit %d:\n%s", r.Code, r.Output())
	}
	if b, _ := os.ReadFile(filepath.Join(markers, "pre_mount")); !strings.HasPrefix(string(b), "tester compat strata-chroot 1.") {
		t.Errorf("pre_mount_commands rendered %q; want user variable, build_name, build_type and packer_version", b)
	}
	for _, m := range []string{"list_mount", "pre_unmount"} {
		if _, err := os.Stat(filepath.Join(markers, m)); err != nil {
			t.Errorf("marker %s: %v\n%s", m, err, r.Output())
		}
	}
	if !strings.Contains(r.Output(), "mounted by strata-chroot itself") {
		t.Errorf("no warning about the dropped list entries:\n%s", r.Output())
	}
	acctest.AssertClean(t, store)
}

func TestAccUploadsLikeCp(t *testing.T) {
	e := acctest.Setup(t)
	src := t.TempDir()
	os.MkdirAll(filepath.Join(src, "tree", "sub"), 0o755)
	os.WriteFile(filepath.Join(src, "tree", "sub", "f"), []byte("from tree\n"), 0o644)
	os.WriteFile(filepath.Join(src, "file.txt"), []byte("single file\n"), 0o600)
	store := filepath.Join(acctest.Scratch(t), "store")
	mnt := filepath.Join(t.TempDir(), "named-mount")
	dir := t.TempDir()
	r := e.Build(t, dir, acctest.Fixture("uploads.pkr.hcl"), map[string]string{"store_dir": store, "archive": baseArchive(t), "src": src, "mount_path": mnt})
	if r.Code != 0 {
		t.Fatalf("exit %d:\n%s", r.Code, r.Output())
	}
	root := filepath.Join(dir, "output-uploads", "rootfs")
	want := map[string]string{
		"opt/newdir/sub/f":        "from tree\n",   // a dir to a new path becomes it
		"srv/existing/tree/sub/f": "from tree\n",   // into an existing dir
		"opt/real-f":              "from tree\n",   // a file in a dir upload, through a link
		"srv/existing/file.txt":   "single file\n", // a file into an existing dir
		"etc/app.conf.real":       "single file\n", // a file through a link
	}
	for p, c := range want {
		if b, err := os.ReadFile(filepath.Join(root, p)); err != nil || string(b) != c {
			t.Errorf("%s: %q %v", p, b, err)
		}
	}
	if l, _ := os.Readlink(filepath.Join(root, "etc/app.conf")); l != "app.conf.real" {
		t.Errorf("the link itself was replaced: %q", l)
	}
	// mount_path was used, seen by hooks, and left empty and unmounted.
	if _, err := os.Stat(filepath.Join(filepath.Dir(mnt), "mount_path_seen")); err != nil {
		t.Errorf("the hook did not see the image at mount_path: %v", err)
	}
	if ms, _ := mount.Under(mnt); len(ms) > 0 {
		t.Errorf("still mounted at mount_path: %+v", ms)
	}
	if ents, _ := os.ReadDir(mnt); len(ents) > 0 {
		t.Errorf("mount_path is not empty after the build: %v", ents)
	}
	acctest.AssertClean(t, store)
}

func TestAccProvisionerResolvConfWins(t *testing.T) {
	e := acctest.Setup(t)
	for name, c := range map[string]struct {
		inline []string
		check  func(t *testing.T, p string)
	}{
		"own nameserver": {[]string{"rm -f /etc/resolv.conf", "echo 'nameserver 10.1.2.3' > /etc/resolv.conf"}, func(t *testing.T, p string) {
			if b, _ := os.ReadFile(p); string(b) != "nameserver 10.1.2.3\n" {
				t.Errorf("resolv.conf is %q", b)
			}
		}},
		"resolvconf link": {[]string{"ln -sf ../run/resolvconf/resolv.conf /etc/resolv.conf"}, func(t *testing.T, p string) {
			if l, err := os.Readlink(p); err != nil || l != "../run/resolvconf/resolv.conf" {
				t.Errorf("resolv.conf link %q %v", l, err)
			}
		}},
	} {
		t.Run(name, func(t *testing.T) {
			vars := archiveVars(t, baseArchive(t), c.inline...)
			dir := t.TempDir()
			r := e.Build(t, dir, acctest.Fixture("archive.pkr.hcl"), vars)
			if r.Code != 0 {
				t.Fatalf("exit %d:\n%s", r.Code, r.Output())
			}
			if !strings.Contains(r.Output(), "changed by a provisioner") {
				t.Errorf("the build did not say it kept the provisioner's resolv.conf:\n%s", r.Output())
			}
			c.check(t, filepath.Join(dir, "output-app", "rootfs", "etc", "resolv.conf"))
			acctest.AssertClean(t, vars["store_dir"])
		})
	}
}

// TestAccAnsibleOverCommunicator runs packer-plugin-ansible's ansible
// provisioner in its default mode, Packer's SSH proxy onto the chroot
// communicator: it must gather facts and finish, not hang.
func TestAccAnsibleOverCommunicator(t *testing.T) {
	e := acctest.Setup(t)
	if os.Getenv("STRATA_ANSIBLE_PLUGIN") == "" {
		t.Fatal("STRATA_ANSIBLE_PLUGIN must name bin/packer-plugin-ansible (make test builds it)")
	}
	store := filepath.Join(acctest.Scratch(t), "store")
	dir := t.TempDir()
	r := e.Start(t, dir, acctest.Fixture("ansible.pkr.hcl"), map[string]string{"store_dir": store, "archive": baseArchive(t), "playbook": acctest.Fixture("playbook.yml")})
	r.Wait(t, 8*time.Minute)
	if r.Code != 0 {
		t.Fatalf("exit %d:\n%s", r.Code, r.Output())
	}
	root := filepath.Join(dir, "output-ansible", "rootfs")
	if b, _ := os.ReadFile(filepath.Join(root, "etc/ansible-facts")); !strings.HasPrefix(string(b), "Debian bookworm\n") || !strings.Contains(string(b), "managed by ansible") {
		t.Errorf("etc/ansible-facts: %q", b)
	}
	if _, err := os.Stat(filepath.Join(root, "root/ansible-ran")); err != nil {
		t.Error("the command task did not run")
	}
	acctest.AssertClean(t, store)
}

// TestAccPortedTemplates: an amazon-chroot template and an arm-image one,
// with only the builder's name changed, fail through packer build before
// anything is mounted, with a hint for each option strata lacks and for
// the {{ .Device }} template fields; ported (only the source block's options
// changed, as the hints said) both build. The list form of chroot_mounts
// works in HCL in both.
func TestAccPortedTemplates(t *testing.T) {
	e := acctest.Setup(t)
	archive := baseArchive(t)
	for _, c := range []struct {
		name  string
		hints []string
	}{
		{"ported-amazon-original.pkr.hcl", []string{
			"region is an option of amazon-chroot that has no meaning here because strata-chroot builds on this host and talks to no cloud API",
			"ami_name is an option of amazon-chroot, not of strata-chroot; use the strata-catalog post-processor's image_name",
			`source_ami_filter is an option of amazon-chroot, not of strata-chroot; use a ` + "`" + `data "strata-image"` + "`",
			"ena_support is an option of amazon-chroot that has no meaning here",
			"tags is an option of amazon-chroot, not of strata-chroot; use the strata-catalog post-processor's labels",
			"mount_path: the template field {{ .Device }} does not exist here",
			"pre_mount_commands[0]: the template field {{ .Device }} does not exist here",
			"has {{ .MountPath }}",
		}},
		{"ported-arm-image-original.pkr.hcl", []string{
			"iso_url is an option of arm-image, not of strata-chroot; use source_archive",
			"iso_checksum is an option of arm-image that has no meaning here because source_archive is a rootfs tarball on this host",
			"image_type is an option of packer-builder-arm and arm-image that has no meaning here",
			"image_arch is an option of arm-image, not of strata-chroot; use architecture = \"arm64\"",
			"qemu_binary is an option of arm-image that has no meaning here",
			"output_filename is an option of arm-image, not of strata-chroot; use output_dir and formats",
			"target_image_size is an option of arm-image, not of strata-chroot; use ext4_free_space",
			"image_mounts is an option of arm-image, not of strata-chroot; use chroot_mounts",
			"additional_chroot_mounts is an option of arm-image and packer-builder-arm, not of strata-chroot; use chroot_mounts",
			"image_chroot_env is an option of packer-builder-arm, not of strata-chroot; use environment = { NAME",
			`resolv-conf is an option of arm-image, not of strata-chroot; write resolv_conf = "none"`,
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			store := filepath.Join(acctest.Scratch(t), "store")
			dir := t.TempDir()
			r := e.Build(t, dir, acctest.Fixture(c.name), map[string]string{"store_dir": store, "archive": archive})
			if r.Code == 0 {
				t.Fatalf("the unported template built:\n%s", r.Output())
			}
			for _, h := range c.hints {
				if !strings.Contains(r.Output(), h) {
					t.Errorf("no hint %q:\n%s", h, r.Output())
				}
			}
			if strings.Contains(r.Output(), "Unsupported argument") {
				t.Errorf("Packer refused an option before the builder could hint:\n%s", r.Output())
			}
			if _, err := os.Stat(filepath.Join(store, "work")); err == nil {
				t.Errorf("the refused build made a work dir")
			}
			if ents, _ := os.ReadDir(dir); len(ents) > 0 {
				t.Errorf("the refused build left %v in its directory", ents)
			}
			acctest.AssertClean(t, store)
		})
	}

	t.Run("ported-amazon.pkr.hcl", func(t *testing.T) {
		store := filepath.Join(acctest.Scratch(t), "store")
		dir := t.TempDir()
		mnt := filepath.Join(t.TempDir(), "web")
		r := e.Build(t, dir, acctest.Fixture("ported-amazon.pkr.hcl"), map[string]string{"store_dir": store, "archive": archive, "mount_path": mnt})
		acctest.AssertClean(t, store)
		if r.Code != 0 {
			t.Fatalf("exit %d:\n%s", r.Code, r.Output())
		}
		if b, err := os.ReadFile(filepath.Join(dir, "output-web", "rootfs", "etc", "motd")); err != nil || string(b) != "web server\n" {
			t.Errorf("etc/motd %q %v", b, err)
		}
		if _, err := os.Stat(filepath.Join(filepath.Dir(mnt), "post_mount.marker")); err != nil {
			t.Errorf("post_mount_commands did not run at mount_path: %v", err)
		}
		if !strings.Contains(r.Output(), "/proc is mounted by strata-chroot itself") {
			t.Errorf("no warning about the list entries the builder mounts itself:\n%s", r.Output())
		}
		if _, err := os.Stat(filepath.Join(dir, "manifest.json")); err != nil {
			t.Errorf("the manifest post-processor wrote nothing: %v", err)
		}
	})
	t.Run("ported-arm-image.pkr.hcl", func(t *testing.T) {
		store := filepath.Join(acctest.Scratch(t), "store")
		dir := t.TempDir()
		r := e.Build(t, dir, acctest.Fixture("ported-arm-image.pkr.hcl"), map[string]string{"store_dir": store, "archive": archive, "host_dir": t.TempDir()})
		acctest.AssertClean(t, store)
		if r.Code != 0 {
			t.Fatalf("exit %d:\n%s", r.Code, r.Output())
		}
		img := filepath.Join(dir, "output-raspios", "rootfs.ext4")
		// debugfs prints its banner on stderr, the answer on stdout.
		if got, err := exec.Command("debugfs", "-R", "cat /etc/hostname", img).Output(); err != nil || string(got) != "raspios\n" {
			t.Errorf("/etc/hostname in the ext4 image: %q %v", got, err)
		}
		if got, err := exec.Command("debugfs", "-R", "ls /boot/firmware", img).Output(); err != nil || !strings.Contains(string(got), "ssh") {
			t.Errorf("/boot/firmware in the ext4 image: %q %v", got, err)
		}
	})
}
