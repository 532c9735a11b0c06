package chroot

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/strata-build/packer-plugin-strata/export"
)

// prepareOutputs fills in and checks formats and the ext4 and squashfs
// options, and that the host has the tools the formats need.
func (c *Config) prepareOutputs(add func(format string, a ...interface{})) {
	if len(c.Formats) == 0 {
		c.Formats = []string{DefaultFormat}
	}
	if c.Ext4FreeSpace == "" {
		c.Ext4FreeSpace = DefaultExt4FreeSpace
	}
	if c.Ext4InodeRatio == 0 {
		c.Ext4InodeRatio = DefaultExt4InodeRatio
	}
	if c.SquashfsCompression == "" {
		c.SquashfsCompression = DefaultSquashfsCompression
	}
	if slices.Contains(c.Formats, "none") {
		// No output at all: the image is the layers in the store (a
		// catalog entry, a parent for later builds) and artifact.json.
		if len(c.Formats) > 1 {
			add("formats: \"none\" writes no output; list it alone, or list only the formats you want")
		}
		c.Formats = []string{}
	}
	seen := map[string]bool{}
	for _, f := range c.Formats {
		if !export.IsFormat(f) {
			add("formats: %q is not a format; use any of %s", f, strings.Join(export.Formats, ", "))
		} else if seen[f] {
			add("formats: %q is listed twice", f)
		}
		seen[f] = true
	}
	if n, err := ParseSize(c.Ext4FreeSpace); err != nil {
		add("ext4_free_space: %v", err)
	} else if n > maxExt4FreeSpace {
		add("ext4_free_space: %q is more than 16T; an ext4 image that large is almost certainly a typo", c.Ext4FreeSpace)
	} else {
		c.ext4FreeBytes = n
	}
	if c.Ext4InodeRatio < 1024 || c.Ext4InodeRatio > 64<<20 {
		add("ext4_inode_ratio: %d is out of range; use bytes per inode between 1024 and 67108864 (mke2fs's default is 16384)", c.Ext4InodeRatio)
	}
	if _, err := export.ParseSquashfsCompression(c.SquashfsCompression); err != nil {
		add("squashfs_compression: %v", err)
	}
	if seen["ext4"] {
		if _, err := c.host.LookPath("mke2fs"); err != nil {
			add("formats: ext4 needs mke2fs on the build host; install e2fsprogs")
		}
	}
	if seen["squashfs"] {
		if _, err := c.host.LookPath("mksquashfs"); err != nil {
			add("formats: squashfs needs mksquashfs on the build host; install squashfs-tools")
		}
	}
}

// prepareOCICompression fills in and checks oci_compression.
func (c *Config) prepareOCICompression(add func(format string, a ...interface{})) {
	if c.OCICompression == "" {
		c.OCICompression = DefaultOCICompression
	}
	if c.OCICompression != "gzip" && c.OCICompression != "zstd" {
		add("oci_compression: %q is not gzip or zstd", c.OCICompression)
	}
}

var sizeRe = regexp.MustCompile(`^([0-9]+)\s*([KMGT]?)(iB|B)?$`)

// ParseSize reads sizes like "64M", "2G", "512MiB" or a plain byte count.
func ParseSize(s string) (int64, error) {
	m := sizeRe.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return 0, fmt.Errorf("%q is not a size; write a number with an optional K, M, G or T suffix, such as \"512M\"", s)
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q: %v", s, err)
	}
	shift := map[string]uint{"": 0, "K": 10, "M": 20, "G": 30, "T": 40}[m[2]]
	if n > (1<<62)>>shift {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return n << shift, nil
}
