//go:generate packer-sdc struct-markdown

package chroot

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// MountConfig is an extra mount inside the chroot.
type MountConfig struct {
	// File system type (`tmpfs`, `proc`, ...) or `bind` for a bind mount.
	Type string `mapstructure:"type" required:"true"`
	// What to mount: a host path for `bind`, a device or a name otherwise.
	Source string `mapstructure:"source" required:"false"`
	// Where, as an absolute path inside the image. It is resolved inside the
	// image root at the moment it is mounted, so symlinks in the image never
	// lead a mount to the host. Paths under /proc, /sys, /dev and /run belong
	// to the builder's own mounts and are refused.
	Target string `mapstructure:"target" required:"true"`
	// Mount options, comma separated as mount(8) takes them (`ro`, `size=1g`).
	Options string `mapstructure:"options" required:"false"`
}

var (
	mountTypeRe = regexp.MustCompile(`^[a-z0-9._-]+$`)
	// The builder's own mounts: chroot_mounts may not land on or under them.
	builderMountDirs = []string{"/proc", "/sys", "/dev", "/run"}
)

// prepareMounts checks chroot_mounts: a known type, an absolute target
// inside the image off the builder's own mounts, each target once, and a
// host path for a bind mount.
func (c *Config) prepareMounts(add func(format string, a ...interface{})) {
	seenTargets := map[string]bool{}
	for i, m := range c.ChrootMounts {
		where := fmt.Sprintf("chroot_mounts[%d]", i)
		if m.Type == "" || !mountTypeRe.MatchString(m.Type) {
			add("%s.type: %q is not a file system type; use e.g. \"tmpfs\" or \"bind\"", where, m.Type)
		}
		if !strings.HasPrefix(m.Target, "/") || hasDotDot(m.Target) {
			add("%s.target: %q must be an absolute path inside the image without \"..\"", where, m.Target)
		} else {
			t := filepath.Clean(m.Target)
			if t == "/" {
				add("%s.target: / is the image root itself; pick a directory inside it", where)
			} else if d := underBuilderMount(t); d != "" {
				add("%s.target: %q is on the builder's own %s mount (as is everything under /proc, /sys, /dev and /run); pick a target elsewhere, such as /mnt/...", where, t, d)
			}
			if seenTargets[t] {
				add("%s.target: %q is mounted twice", where, t)
			}
			seenTargets[t] = true
		}
		if m.Type == "bind" || m.Type == "rbind" {
			if m.Source == "" {
				add("%s.source: a bind mount needs a host path to bind", where)
			} else if _, err := os.Stat(m.Source); err != nil {
				add("%s.source: %v", where, err)
			}
		}
		if m.Source == "" {
			c.ChrootMounts[i].Source = m.Type
		}
	}
}

// underBuilderMount names the builder's mount t is on or under, or "".
func underBuilderMount(t string) string {
	for _, d := range builderMountDirs {
		if t == d || within(t, d) {
			return d
		}
	}
	return ""
}
