package export

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// SquashfsCompression is a mksquashfs compressor and, for zstd, its level.
type SquashfsCompression struct {
	Compressor string
	Level      int // 0: the compressor's default
}

// Args are mksquashfs's options for it.
func (c SquashfsCompression) Args() []string {
	args := []string{"-comp", c.Compressor}
	if c.Level > 0 {
		args = append(args, "-Xcompression-level", strconv.Itoa(c.Level))
	}
	return args
}

// ParseSquashfsCompression reads "zstd", "zstd:LEVEL" (1-22), "xz", "gzip"
// or "lz4".
func ParseSquashfsCompression(s string) (SquashfsCompression, error) {
	name, level, hasLevel := strings.Cut(s, ":")
	switch name {
	case "zstd":
		c := SquashfsCompression{Compressor: "zstd"}
		if hasLevel {
			n, err := strconv.Atoi(level)
			if err != nil || n < 1 || n > 22 {
				return c, fmt.Errorf("%q: the zstd level must be a number from 1 to 22", s)
			}
			c.Level = n
		}
		return c, nil
	case "xz", "gzip", "lz4":
		if hasLevel {
			return SquashfsCompression{}, fmt.Errorf("%q: only zstd takes a level here", s)
		}
		return SquashfsCompression{Compressor: name}, nil
	}
	return SquashfsCompression{}, fmt.Errorf("%q is not a compressor; use zstd, zstd:LEVEL (1-22), xz, gzip or lz4", s)
}

func (e *exporter) squashfs() (Output, error) {
	final := filepath.Join(e.outDir, FileName("squashfs"))
	tmp := tmpName(e.outDir, "squashfs")
	defer e.temp(tmp)()
	if err := e.mkSquashfs(tmp, nil, nil); err != nil {
		return Output{}, err
	}
	return finishFile(tmp, final, "squashfs")
}

// mkSquashfs makes the squashfs of the tree at root in the file tmp with
// the build's compression and the extra mksquashfs options (which go last:
// -e takes every argument after it), in the environment env.
func (e *exporter) mkSquashfs(tmp string, extra, env []string) error {
	comp, err := ParseSquashfsCompression(e.opt.SquashfsCompression)
	if e.opt.SquashfsCompression == "" {
		comp, err = SquashfsCompression{Compressor: "zstd", Level: 3}, nil
	}
	if err != nil {
		return err
	}
	os.Remove(tmp)
	// mksquashfs keeps owners, modes, hard links, devices, holes and (with
	// -xattrs) extended attributes, which carry file capabilities.
	args := append([]string{e.root, tmp}, comp.Args()...)
	args = append(args, "-noappend", "-xattrs", "-no-progress", "-quiet")
	if err := e.runEnv(env, "mksquashfs", append(args, extra...)...); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}
