package chroot

import (
	"path"
	"slices"
	"strings"
)

// prepareContents checks the rules for what the finished image may hold:
// allowed_packages and denied_packages are globs, allowed_setuid (defaulted
// to minbase's list) and allowed_setuid_extra clean absolute paths.
func (c *Config) prepareContents(add func(format string, a ...interface{})) {
	if c.AllowedSetuid == nil {
		c.AllowedSetuid = defaultAllowedSetuid
	}
	for _, list := range []struct {
		opt   string
		globs []string
	}{{"allowed_packages", c.AllowedPackages}, {"denied_packages", c.DeniedPackages}} {
		for _, g := range list.globs {
			if _, err := path.Match(g, "x"); err != nil || g == "" {
				add("%s: %q is not a glob", list.opt, g)
			}
		}
	}
	for _, list := range []struct {
		opt   string
		paths []string
	}{{"allowed_setuid", c.AllowedSetuid}, {"allowed_setuid_extra", c.AllowedSetuidExtra}} {
		for _, p := range list.paths {
			if !strings.HasPrefix(p, "/") || hasDotDot(p) || path.Clean(p) != p {
				add("%s: %q must be a clean absolute path in the image, such as \"/usr/bin/sudo\"", list.opt, p)
			}
		}
	}
}

// allowedSetuid is every path allowed a setuid or setgid bit:
// allowed_setuid (or its defaults) and allowed_setuid_extra.
func (c *Config) allowedSetuid() []string {
	return append(slices.Clone(c.AllowedSetuid), c.AllowedSetuidExtra...)
}

// defaultAllowedSetuid are the setuid and setgid files of Debian's minbase.
var defaultAllowedSetuid = []string{
	"/usr/bin/chage", "/usr/bin/chfn", "/usr/bin/chsh", "/usr/bin/expiry", "/usr/bin/gpasswd",
	"/usr/bin/mount", "/usr/bin/newgrp", "/usr/bin/passwd", "/usr/bin/su", "/usr/bin/umount",
	"/usr/sbin/unix_chkpwd",
}
