package chroot

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// withHostSources is a host whose apt configuration (read in a temp dir)
// has one mirror.
func withHostSources(t *testing.T, sources string) host {
	t.Helper()
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc/apt"), 0o755)
	if sources != "" {
		os.WriteFile(filepath.Join(root, "etc/apt/sources.list"), []byte(sources), 0o644)
	}
	return osHost{root: root}
}

func baseConfig(t *testing.T) map[string]interface{} {
	return map[string]interface{}{
		"packer_build_name": "test",
		"store_dir":         t.TempDir(),
		"bootstrap":         map[string]interface{}{"suite": "bookworm"},
	}
}

func TestPrepareDefaults(t *testing.T) {
	h := withHostSources(t, "deb http://mirror.test/debian bookworm main\n")
	raw := baseConfig(t)
	c := Config{host: h}
	if _, err := c.Prepare(raw); err != nil {
		t.Fatal(err)
	}
	store := raw["store_dir"].(string)
	checks := map[string][2]string{
		"work_dir":          {c.WorkDir, filepath.Join(store, "work", "test")},
		"package_cache.dir": {c.PackageCache.Dir, filepath.Join(store, "cache", "apt")},
		"mount_path":        {c.MountPath, filepath.Join(store, "work", "test", "rootfs")},
		"squashfs":          {c.SquashfsCompression, "zstd:3"},
		"output_dir":        {filepath.Base(c.OutputDir), "output-test"},
		"resolv_conf":       {c.ResolvConf, "copy-host"},
		"command_wrapper":   {c.CommandWrapper, "{{.Command}}"},
		"formats":           {strings.Join(c.Formats, ","), "tar.zst"},
		"bootstrap.variant": {c.Bootstrap.Variant, "minbase"},
		"bootstrap.mirror":  {c.Bootstrap.Mirror, "http://mirror.test/debian"},
		"bootstrap.comps":   {strings.Join(c.Bootstrap.Components, ","), "main"},
		"ext4_free_space":   {c.Ext4FreeSpace, "64M"},
	}
	for opt, v := range checks {
		if v[0] != v[1] {
			t.Errorf("%s = %q, want %q", opt, v[0], v[1])
		}
	}
	if !*c.PreventServiceStart {
		t.Error("prevent_service_start should default to true")
	}
	if c.ext4FreeBytes != 64<<20 {
		t.Errorf("ext4 free bytes %d", c.ext4FreeBytes)
	}
	if !*c.Minimize.Enabled || strings.Join(c.Minimize.Locales, ",") != "C.UTF-8" || c.Minimize.KeepGconv {
		t.Errorf("minimize defaults: %+v", c.Minimize)
	}
	if !slices.Contains(c.AllowedSetuid, "/usr/bin/su") || !slices.Contains(c.AllowedSetuid, "/usr/sbin/unix_chkpwd") {
		t.Errorf("allowed_setuid default %v lacks minbase's setuid files", c.AllowedSetuid)
	}
}

// allowed_setuid_extra adds to allowed_setuid, whether that is the default
// list or the template's own.
func TestPrepareAllowedSetuidExtra(t *testing.T) {
	h := withHostSources(t, "deb http://mirror.test/debian bookworm main\n")
	for name, c := range map[string]struct {
		own         []string
		want, wantN []string
	}{
		"defaults": {nil, []string{"/usr/bin/su", "/usr/bin/sudo"}, nil},
		"own list": {[]string{"/usr/bin/passwd"}, []string{"/usr/bin/passwd", "/usr/bin/sudo"}, []string{"/usr/bin/su"}},
	} {
		raw := baseConfig(t)
		raw["allowed_setuid_extra"] = []string{"/usr/bin/sudo"}
		if c.own != nil {
			raw["allowed_setuid"] = c.own
		}
		cfg := Config{host: h}
		if _, err := cfg.Prepare(raw); err != nil {
			t.Fatal(err)
		}
		for _, p := range c.want {
			if !slices.Contains(cfg.allowedSetuid(), p) {
				t.Errorf("%s: %s not allowed: %v", name, p, cfg.allowedSetuid())
			}
		}
		for _, p := range c.wantN {
			if slices.Contains(cfg.allowedSetuid(), p) {
				t.Errorf("%s: %s allowed: %v", name, p, cfg.allowedSetuid())
			}
		}
	}
}

func TestPrepareStoreFromEnv(t *testing.T) {
	h := withHostSources(t, "deb http://m.test/debian bookworm main\n")
	dir := t.TempDir()
	t.Setenv("STRATA_HOME", dir)
	raw := baseConfig(t)
	delete(raw, "store_dir")
	c := Config{host: h}
	if _, err := c.Prepare(raw); err != nil {
		t.Fatal(err)
	}
	if c.StoreDir != dir {
		t.Fatalf("store_dir = %q, want STRATA_HOME %q", c.StoreDir, dir)
	}
}

// TestPrepareErrors checks that every bad option gives an error naming it,
// and that one Prepare reports all of them at once.
func TestPrepareErrors(t *testing.T) {
	h := withHostSources(t, "deb http://mirror.test/debian bookworm main\n")
	archive := filepath.Join(t.TempDir(), "root.tar.zst")
	os.WriteFile(archive, []byte("x"), 0o644)
	cases := []struct {
		name   string
		change func(map[string]interface{})
		want   []string
	}{
		{"no source", func(m map[string]interface{}) { delete(m, "bootstrap") }, []string{"no root file system source", "parent"}},
		{"two sources", func(m map[string]interface{}) { m["source_archive"] = archive }, []string{"both set"}},
		{"missing suite", func(m map[string]interface{}) { m["bootstrap"] = map[string]interface{}{"variant": "minbase"} }, []string{"bootstrap.suite: required"}},
		{"bad suite", func(m map[string]interface{}) { m["bootstrap"] = map[string]interface{}{"suite": "Book Worm"} }, []string{"bootstrap.suite"}},
		{"bad variant", func(m map[string]interface{}) {
			m["bootstrap"] = map[string]interface{}{"suite": "bookworm", "variant": "tiny"}
		}, []string{"bootstrap.variant", "minbase"}},
		{"bad mirror", func(m map[string]interface{}) {
			m["bootstrap"] = map[string]interface{}{"suite": "bookworm", "mirror": "mirror.test/debian"}
		}, []string{"bootstrap.mirror", "not a URL"}},
		{"bad component", func(m map[string]interface{}) {
			m["bootstrap"] = map[string]interface{}{"suite": "bookworm", "components": []string{"Main!"}}
		}, []string{"bootstrap.components"}},
		{"bad include", func(m map[string]interface{}) {
			m["bootstrap"] = map[string]interface{}{"suite": "bookworm", "include": []string{"curl wget"}}
		}, []string{"bootstrap.include"}},
		{"missing keyring", func(m map[string]interface{}) {
			m["bootstrap"] = map[string]interface{}{"suite": "bookworm", "keyring": "/nonexistent/k.gpg"}
		}, []string{"bootstrap.keyring"}},
		{"archive ext", func(m map[string]interface{}) {
			delete(m, "bootstrap")
			m["source_archive"] = "/tmp/root.zip"
		}, []string{"source_archive", "unknown extension"}},
		{"archive missing", func(m map[string]interface{}) {
			delete(m, "bootstrap")
			m["source_archive"] = "/nonexistent/root.tar.gz"
		}, []string{"source_archive", "no such file"}},
		{"resolv", func(m map[string]interface{}) { m["resolv_conf"] = "host" }, []string{"resolv_conf", "copy-host"}},
		{"format", func(m map[string]interface{}) { m["formats"] = []string{"zip"} }, []string{"formats", "\"zip\""}},
		{"format twice", func(m map[string]interface{}) { m["formats"] = []string{"tar", "tar"} }, []string{"listed twice"}},
		{"format none and more", func(m map[string]interface{}) { m["formats"] = []string{"none", "oci"} }, []string{"formats", "list it alone"}},
		{"ext4 size", func(m map[string]interface{}) { m["ext4_free_space"] = "lots" }, []string{"ext4_free_space"}},
		{"env name", func(m map[string]interface{}) { m["environment"] = map[string]string{"1BAD": "x"} }, []string{"environment", "1BAD"}},
		{"mount target", func(m map[string]interface{}) {
			m["chroot_mounts"] = []map[string]interface{}{{"type": "tmpfs", "target": "relative/dir"}}
		}, []string{"chroot_mounts[0].target", "absolute"}},
		{"minimize locale", func(m map[string]interface{}) {
			m["minimize"] = map[string]interface{}{"locales": []string{"en US"}}
		}, []string{"minimize.locales", "en_US.UTF-8"}},
		{"minimize remove_files relative", func(m map[string]interface{}) {
			m["minimize"] = map[string]interface{}{"remove_files": []string{"usr/share/zoneinfo"}}
		}, []string{"minimize.remove_files", "absolute glob"}},
		{"minimize remove_files dotdot", func(m map[string]interface{}) {
			m["minimize"] = map[string]interface{}{"remove_files": []string{"/usr/../../etc"}}
		}, []string{"minimize.remove_files", ".."}},
		{"minimize remove_files root", func(m map[string]interface{}) {
			m["minimize"] = map[string]interface{}{"remove_files": []string{"/"}}
		}, []string{"minimize.remove_files", "not /"}},
		{"minimize remove_files bad glob", func(m map[string]interface{}) {
			m["minimize"] = map[string]interface{}{"remove_files": []string{"/usr/[a"}}
		}, []string{"minimize.remove_files", "not a glob"}},
		{"minimize remove_packages", func(m map[string]interface{}) {
			m["minimize"] = map[string]interface{}{"remove_packages": []string{"curl=7.88"}}
		}, []string{"minimize.remove_packages", "not a package name"}},
		{"minimize disabled with removals", func(m map[string]interface{}) {
			m["minimize"] = map[string]interface{}{"enabled": false, "remove_packages": []string{"curl"}}
		}, []string{"minimize", "enabled = true"}},
		{"allowed_packages glob", func(m map[string]interface{}) { m["allowed_packages"] = []string{"lib[c"} }, []string{"allowed_packages", "not a glob"}},
		{"denied_packages empty", func(m map[string]interface{}) { m["denied_packages"] = []string{""} }, []string{"denied_packages", "not a glob"}},
		{"allowed_setuid relative", func(m map[string]interface{}) { m["allowed_setuid"] = []string{"usr/bin/su"} }, []string{"allowed_setuid", "absolute"}},
		{"allowed_setuid_extra relative", func(m map[string]interface{}) { m["allowed_setuid_extra"] = []string{"usr/bin/sudo"} }, []string{"allowed_setuid_extra", "absolute"}},
		{"allowed_setuid_extra dotdot", func(m map[string]interface{}) { m["allowed_setuid_extra"] = []string{"/usr/../bin/sudo"} }, []string{"allowed_setuid_extra", "clean"}},
		{"mount dotdot", func(m map[string]interface{}) {
			m["chroot_mounts"] = []map[string]interface{}{{"type": "tmpfs", "target": "/a/../../etc"}}
		}, []string{"chroot_mounts[0].target"}},
		{"mount reserved", func(m map[string]interface{}) {
			m["chroot_mounts"] = []map[string]interface{}{{"type": "tmpfs", "target": "/proc"}}
		}, []string{"chroot_mounts[0].target", "builder's own /proc mount"}},
		{"mount dev shm", func(m map[string]interface{}) {
			m["chroot_mounts"] = []map[string]interface{}{{"type": "tmpfs", "target": "/dev/shm"}}
		}, []string{"chroot_mounts[0].target", "/dev mount"}},
		{"mount dev ptmx", func(m map[string]interface{}) {
			m["chroot_mounts"] = []map[string]interface{}{{"type": "bind", "source": "/dev/null", "target": "/dev/ptmx"}}
		}, []string{"chroot_mounts[0].target", "/dev mount"}},
		{"mount under proc", func(m map[string]interface{}) {
			m["chroot_mounts"] = []map[string]interface{}{{"type": "tmpfs", "target": "/proc/self/root/tmp"}}
		}, []string{"chroot_mounts[0].target", "/proc"}},
		{"mount under run", func(m map[string]interface{}) {
			m["chroot_mounts"] = []map[string]interface{}{{"type": "tmpfs", "target": "/run/x"}}
		}, []string{"chroot_mounts[0].target", "/run"}},
		{"wrapper without command", func(m map[string]interface{}) { m["command_wrapper"] = "sudo true" }, []string{"command_wrapper", "{{ .Command }}"}},
		{"mirror not a url", func(m map[string]interface{}) {
			m["bootstrap"] = map[string]interface{}{"suite": "bookworm", "mirror": "http:///debian"}
		}, []string{"bootstrap.mirror", "no host"}},
		{"ext4 absurd", func(m map[string]interface{}) { m["ext4_free_space"] = "99T" }, []string{"ext4_free_space", "16T"}},
		{"inode ratio", func(m map[string]interface{}) { m["ext4_inode_ratio"] = 7 }, []string{"ext4_inode_ratio"}},
		{"squashfs compression", func(m map[string]interface{}) { m["squashfs_compression"] = "zstd:40" }, []string{"squashfs_compression", "1 to 22"}},
		{"amazon copy_files", func(m map[string]interface{}) { m["copy_files"] = []string{"/etc/resolv.conf"} }, []string{"copy_files", "resolv_conf"}},
		{"amazon source_ami", func(m map[string]interface{}) { m["source_ami"] = "ami-123" }, []string{"source_ami", "parent"}},
		{"mount type", func(m map[string]interface{}) {
			m["chroot_mounts"] = []map[string]interface{}{{"type": "", "target": "/mnt"}}
		}, []string{"chroot_mounts[0].type"}},
		{"bind source", func(m map[string]interface{}) {
			m["chroot_mounts"] = []map[string]interface{}{{"type": "bind", "source": "/nonexistent/src", "target": "/mnt"}}
		}, []string{"chroot_mounts[0].source"}},
		{"mount twice", func(m map[string]interface{}) {
			m["chroot_mounts"] = []map[string]interface{}{{"type": "tmpfs", "target": "/mnt"}, {"type": "tmpfs", "target": "/mnt/"}}
		}, []string{"chroot_mounts[1].target", "twice"}},
		{"hook template", func(m map[string]interface{}) { m["post_mount_commands"] = []string{"echo {{ .MountPath "} }, []string{"post_mount_commands"}},
		{"wrapper template", func(m map[string]interface{}) { m["command_wrapper"] = "sudo {{ .Nope }}" }, []string{"command_wrapper"}},
		{"store root", func(m map[string]interface{}) { m["work_dir"] = "/" }, []string{"work_dir: must not be /"}},
		{"output is store", func(m map[string]interface{}) { m["output_dir"] = m["store_dir"] }, []string{"output_dir", "overlaps store_dir"}},
		{"output in work", func(m map[string]interface{}) {
			m["output_dir"] = filepath.Join(m["store_dir"].(string), "work", "test", "out")
		}, []string{"output_dir", "overlaps work_dir"}},
		{"output holds store", func(m map[string]interface{}) { m["output_dir"] = filepath.Dir(m["store_dir"].(string)) }, []string{"output_dir", "overlaps store_dir"}},
		{"work is store", func(m map[string]interface{}) { m["work_dir"] = m["store_dir"] }, []string{"work_dir", "contains the store"}},
		{"work holds all work dirs", func(m map[string]interface{}) {
			m["work_dir"] = filepath.Join(m["store_dir"].(string), "work")
		}, []string{"work_dir", "every build's work dir"}},
		{"work in store elsewhere", func(m map[string]interface{}) {
			m["work_dir"] = filepath.Join(m["store_dir"].(string), "layers", "x")
		}, []string{"work_dir", "inside the store"}},
		{"mount path is work", func(m map[string]interface{}) {
			m["work_dir"] = filepath.Join(m["store_dir"].(string), "work", "w")
			m["mount_path"] = m["work_dir"]
		}, []string{"mount_path"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			raw := baseConfig(t)
			tc.change(raw)
			c := Config{host: h}
			_, err := c.Prepare(raw)
			if err == nil {
				t.Fatal("Prepare accepted a bad config")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

// checkedHost prepares raw, which must be a valid template, and checks the
// host for it as a build does first.
func checkedHost(t *testing.T, h host, raw map[string]interface{}) error {
	t.Helper()
	c := Config{host: h}
	if _, err := c.Prepare(raw); err != nil {
		t.Fatalf("Prepare checks only the template, and this one is good: %v", err)
	}
	return c.checkHost(context.Background())
}

// TestCheckHostRefusesForeignWorkDir: a work_dir that holds files strata did
// not put there, or other builds' work dirs, is refused: a build recovers
// and removes what is in its work dir.
func TestCheckHostRefusesForeignWorkDir(t *testing.T) {
	h := withHostSources(t, "deb http://mirror.test/debian bookworm main\n")
	raw := baseConfig(t)
	work := t.TempDir()
	os.WriteFile(filepath.Join(work, "precious.txt"), []byte("x"), 0o644)
	raw["work_dir"] = work
	if err := checkedHost(t, h, raw); err == nil || !strings.Contains(err.Error(), "not a strata work dir") {
		t.Fatalf("a work dir with foreign files was accepted: %v", err)
	}
	parent := t.TempDir()
	os.WriteFile(filepath.Join(parent, workMarker), nil, 0o600)
	os.MkdirAll(filepath.Join(parent, "other"), 0o700)
	os.WriteFile(filepath.Join(parent, "other", workMarker), nil, 0o600)
	raw["work_dir"] = parent
	if err := checkedHost(t, h, raw); err == nil || !strings.Contains(err.Error(), "another build") {
		t.Fatalf("a work dir holding another build's work dir was accepted: %v", err)
	}
}

// TestCheckHostStorePermissions: a store owned by another user or writable
// by others is refused, naming the fix.
func TestCheckHostStorePermissions(t *testing.T) {
	h := withHostSources(t, "deb http://mirror.test/debian bookworm main\n")
	for name, setup := range map[string]func(dir string){
		"other owner":       func(dir string) { os.Chown(dir, 65534, 65534) },
		"writable by all":   func(dir string) { os.Chmod(dir, 0o777) },
		"writable by group": func(dir string) { os.Chmod(dir, 0o770) },
	} {
		t.Run(name, func(t *testing.T) {
			raw := baseConfig(t)
			store := filepath.Join(t.TempDir(), "store")
			os.Mkdir(store, 0o700)
			setup(store)
			raw["store_dir"] = store
			err := checkedHost(t, h, raw)
			if err == nil || !strings.Contains(err.Error(), "store_dir") {
				t.Fatalf("accepted: %v", err)
			}
		})
	}
	raw := baseConfig(t)
	open := filepath.Join(t.TempDir(), "open")
	os.Mkdir(open, 0o777)
	os.Chmod(open, 0o777)
	raw["store_dir"] = filepath.Join(open, "store")
	if err := checkedHost(t, h, raw); err == nil || !strings.Contains(err.Error(), "writable by every user") {
		t.Fatalf("a store under a world-writable dir was accepted: %v", err)
	}
}

// TestPrepareAmazonMountList: amazon-chroot's list form of chroot_mounts
// works in JSON templates; its entries for mounts the builder makes itself
// are dropped with a warning.
func TestPrepareAmazonMountList(t *testing.T) {
	h := withHostSources(t, "deb http://mirror.test/debian bookworm main\n")
	raw := baseConfig(t)
	raw["chroot_mounts"] = []interface{}{
		[]interface{}{"proc", "proc", "/proc"},
		[]interface{}{"bind", "/dev", "/dev"},
		[]interface{}{"tmpfs", "tmpfs", "/var/tmp/build"},
	}
	c := Config{host: h}
	warns, err := c.Prepare(raw)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.ChrootMounts) != 1 || c.ChrootMounts[0].Target != "/var/tmp/build" || c.ChrootMounts[0].Type != "tmpfs" {
		t.Fatalf("mounts %+v", c.ChrootMounts)
	}
	if len(warns) != 2 || !strings.Contains(warns[0], "mounted by strata-chroot itself") {
		t.Fatalf("warnings %v", warns)
	}
}

// TestPrepareTemplateContext: hooks and the wrapper see user variables and
// build_name like every other option.
func TestPrepareTemplateContext(t *testing.T) {
	h := withHostSources(t, "deb http://mirror.test/debian bookworm main\n")
	raw := baseConfig(t)
	raw["packer_user_variables"] = map[string]string{"who": "tester"}
	raw["post_mount_commands"] = []string{"echo {{user `who`}} {{build_name}} {{ .MountPath }}"}
	raw["command_wrapper"] = "env BUILD={{build_name}} {{ .Command }}"
	c := Config{host: h}
	if _, err := c.Prepare(raw); err != nil {
		t.Fatal(err)
	}
	got, err := c.render(c.PostMountCommands[0], hookData{MountPath: "/m"})
	if err != nil || got != "echo tester test /m" {
		t.Fatalf("rendered %q, %v", got, err)
	}
	if w, err := c.wrap("ls"); err != nil || w != "env BUILD=test ls" {
		t.Fatalf("wrapped %q, %v", w, err)
	}
}

// TestPrepareErrorOrder: errors come out in the same order every time.
func TestPrepareErrorOrder(t *testing.T) {
	h := withHostSources(t, "deb http://mirror.test/debian bookworm main\n")
	var first string
	for i := 0; i < 20; i++ {
		raw := baseConfig(t)
		raw["store_dir"] = "/"
		raw["work_dir"] = "/"
		raw["package_cache_dir"] = "/"
		c := Config{host: h}
		_, err := c.Prepare(raw)
		if err == nil {
			t.Fatal("accepted")
		}
		if i == 0 {
			first = err.Error()
		} else if err.Error() != first {
			t.Fatalf("error order changed:\n%s\n---\n%s", first, err)
		}
	}
}

func TestPrepareCollectsAllErrors(t *testing.T) {
	h := withHostSources(t, "deb http://mirror.test/debian bookworm main\n")
	raw := baseConfig(t)
	raw["resolv_conf"] = "bad"
	raw["formats"] = []string{"zip"}
	raw["ext4_free_space"] = "x"
	c := Config{host: h}
	_, err := c.Prepare(raw)
	if err == nil {
		t.Fatal("accepted")
	}
	for _, opt := range []string{"resolv_conf", "formats", "ext4_free_space"} {
		if !strings.Contains(err.Error(), opt) {
			t.Errorf("one Prepare should report every error; %q is missing from %q", opt, err)
		}
	}
}

func TestPrepareMirrorFromHostOrError(t *testing.T) {
	h := withHostSources(t, "")
	c := Config{host: h}
	_, err := c.Prepare(baseConfig(t))
	if err == nil || !strings.Contains(err.Error(), "bootstrap.mirror") || !strings.Contains(err.Error(), "set mirror") {
		t.Fatalf("want a bootstrap.mirror error telling to set mirror, got %v", err)
	}
	withHostSources(t, "")
	raw := baseConfig(t)
	raw["bootstrap"] = map[string]interface{}{"suite": "bookworm", "mirror": "http://given.test/debian"}
	c2 := Config{host: h}
	if _, err := c2.Prepare(raw); err != nil {
		t.Fatalf("an explicit mirror needs no host sources: %v", err)
	}
}

func TestPrepareMissingHostTools(t *testing.T) {
	h := newFakeHost(withHostSources(t, "deb http://mirror.test/debian bookworm main\n").Root())
	for _, p := range []string{"mke2fs", "mksquashfs", "mmdebstrap"} {
		h.missing[p] = true
	}
	raw := baseConfig(t)
	raw["formats"] = []string{"ext4", "squashfs"}
	c := Config{host: h}
	_, err := c.Prepare(raw)
	for _, w := range []string{"install e2fsprogs", "install squashfs-tools", "install the mmdebstrap package"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("want %q in %v", w, err)
		}
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "512": 512, "64M": 64 << 20, "2G": 2 << 30, "1GiB": 1 << 30, "10KB": 10 << 10} {
		got, err := ParseSize(in)
		if err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "-1", "1.5G", "ten", "99999999999T"} {
		if _, err := ParseSize(bad); err == nil {
			t.Errorf("ParseSize(%q) accepted", bad)
		}
	}
}

func TestConfigHash(t *testing.T) {
	h := withHostSources(t, "deb http://mirror.test/debian bookworm main\n")
	hash := func(extra map[string]interface{}) string {
		raw := baseConfig(t)
		raw["store_dir"] = "/tmp/strata-hash-test"
		for k, v := range extra {
			raw[k] = v
		}
		c := Config{host: h}
		c.Prepare(raw)
		return c.configHash
	}
	a, b := hash(nil), hash(map[string]interface{}{"packer_force": true, "packer_on_error": "abort"})
	if !strings.HasPrefix(a, "sha256:") || a != b {
		t.Errorf("run flags changed the configuration hash: %s %s", a, b)
	}
	if c := hash(map[string]interface{}{"formats": []string{"tar"}}); c == a {
		t.Error("a different configuration has the same hash")
	}
}

// packer validate hands a data source's unknown answer over as "<unknown>":
// the parent is checked at build time instead.
func TestPrepareUnknownParentUnderValidate(t *testing.T) {
	h := withHostSources(t, "deb http://mirror.test/debian bookworm main\n")
	raw := baseConfig(t)
	delete(raw, "bootstrap")
	raw["parent"] = "<unknown>"
	c := Config{host: h}
	if _, err := c.Prepare(raw); err != nil {
		t.Fatalf("an unknown parent under validate: %v", err)
	}
}
