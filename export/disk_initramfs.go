package export

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os/exec"
	"path"
	"strconv"
	"strings"

	"github.com/klauspost/compress/zstd"

	"github.com/strata-build/packer-plugin-strata/internal/inroot"
)

// maxInitramfs bounds an initramfs read for the check; Debian's are 10-60 MB.
const maxInitramfs = 512 << 20

// initramfsContents are the names in an initramfs and the modules its
// kernel has built in (modules.builtin, which initramfs-tools copies in).
type initramfsContents struct {
	names   map[string]bool
	builtin map[string]bool // "kernel/fs/ext4/ext4.ko"
}

// checkInitramfs reads the initramfs of k (the cpio archives the kernel
// unpacks: an uncompressed early one for microcode, then a compressed one)
// and checks that it can mount a root file system of type fs: it has /init
// and the file system's module, as a file or built into the kernel. This
// is read from the archive itself, so no tool of the image runs on the
// host and the host needs no initramfs-tools.
func checkInitramfs(ctx context.Context, root *inroot.Root, k bootKernel, fs string) (string, error) {
	f, err := root.OpenFile(k.Initrd)
	if err != nil {
		return "", err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxInitramfs+1))
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", k.Initrd, err)
	}
	if len(data) > maxInitramfs {
		return "", fmt.Errorf("%s is larger than %d bytes; not an initramfs this check reads", k.Initrd, maxInitramfs)
	}
	c, err := readInitramfs(ctx, data)
	if err != nil {
		return "", fmt.Errorf("reading the initramfs %s: %w", k.Initrd, err)
	}
	if !c.names["init"] {
		return "", fmt.Errorf("the initramfs %s has no /init: it cannot boot; make it again with update-initramfs -c -k %s (initramfs-tools)", k.Initrd, k.Version)
	}
	mod := "kernel/fs/" + fs + "/" + fs + ".ko"
	if c.builtin[mod] {
		return fs + " built into the kernel", nil
	}
	for n := range c.names {
		rest, ok := strings.CutPrefix(n, "usr/")
		if !ok {
			rest = n
		}
		if strings.HasPrefix(rest, "lib/modules/"+k.Version+"/") && strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(rest, ".xz"), ".zst"), ".gz") == "lib/modules/"+k.Version+"/"+mod {
			return fs + " module " + path.Base(n), nil
		}
	}
	return "", fmt.Errorf("the initramfs %s cannot mount a %s root: it has no %s module and the kernel %s does not have it built in; add %q to /etc/initramfs-tools/modules in the template and run update-initramfs -u -k %s",
		k.Initrd, fs, fs, k.Version, fs, k.Version)
}

// readInitramfs lists the newc cpio archives concatenated in data, each
// plain or compressed (gzip and zstd read here; xz, lz4 and bzip2 by the
// host's decompressor).
func readInitramfs(ctx context.Context, data []byte) (*initramfsContents, error) {
	c := &initramfsContents{names: map[string]bool{}, builtin: map[string]bool{}}
	return c, c.readArchives(ctx, data, true)
}

// readArchives reads the cpio archives in data, padded with zeros between
// them. A compressed one runs to the end of the file (it may hold several
// archives one after another); it is read when compressed is true.
func (c *initramfsContents) readArchives(ctx context.Context, data []byte, compressed bool) error {
	for {
		data = bytes.TrimLeft(data, "\x00")
		if len(data) == 0 {
			return nil
		}
		if !bytes.HasPrefix(data, []byte("0707")) && compressed {
			plain, err := decompress(ctx, data)
			if err != nil {
				return err
			}
			return c.readArchives(ctx, plain, false)
		}
		n, err := c.readCpio(data)
		if err != nil {
			return err
		}
		data = data[n:]
	}
}

// decompress undoes the compression data starts with.
func decompress(ctx context.Context, data []byte) ([]byte, error) {
	switch {
	case bytes.HasPrefix(data, []byte{0x1f, 0x8b}):
		r, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			return nil, err
		}
		r.Multistream(true)
		return io.ReadAll(io.LimitReader(r, 4*maxInitramfs))
	case bytes.HasPrefix(data, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		r, err := zstd.NewReader(bytes.NewReader(data), zstd.WithDecoderMaxMemory(4*maxInitramfs))
		if err != nil {
			return nil, err
		}
		defer r.Close()
		return io.ReadAll(r)
	}
	var tool []string
	switch {
	case bytes.HasPrefix(data, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		tool = []string{"xz", "-dc"}
	case bytes.HasPrefix(data, []byte{0x02, 0x21, 0x4c, 0x18}), bytes.HasPrefix(data, []byte{0x04, 0x22, 0x4d, 0x18}):
		tool = []string{"lz4", "-dc"}
	case bytes.HasPrefix(data, []byte("BZh")):
		tool = []string{"bzip2", "-dc"}
	default:
		return nil, fmt.Errorf("it is neither a cpio archive nor compressed by gzip, zstd, xz, lz4 or bzip2 (it starts %x)", data[:min(8, len(data))])
	}
	cmd := exec.CommandContext(ctx, tool[0], tool[1:]...)
	cmd.Stdin = bytes.NewReader(data)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s: %v: %s (install it on the build host, or set COMPRESS=zstd in the image's /etc/initramfs-tools/initramfs.conf)", strings.Join(tool, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out.Bytes(), nil
}

// readCpio reads one newc archive at the start of data up to its trailer
// and returns its length.
func (c *initramfsContents) readCpio(data []byte) (int, error) {
	off := 0
	for {
		if len(data)-off < 110 {
			return 0, fmt.Errorf("a cpio header at %d is cut short", off)
		}
		h := data[off : off+110]
		if string(h[:6]) != "070701" && string(h[:6]) != "070702" {
			return 0, fmt.Errorf("no newc cpio header at %d", off)
		}
		field := func(i int) (int, error) {
			n, err := strconv.ParseUint(string(h[6+8*i:6+8*i+8]), 16, 32)
			return int(n), err
		}
		size, err1 := field(6)
		nameSize, err2 := field(11)
		if err1 != nil || err2 != nil || nameSize < 1 {
			return 0, fmt.Errorf("a bad cpio header at %d", off)
		}
		nameEnd := off + 110 + nameSize
		dataStart := (nameEnd + 3) &^ 3
		dataEnd := dataStart + size
		if nameEnd > len(data) || dataEnd > len(data) {
			return 0, fmt.Errorf("a cpio entry at %d runs past the end", off)
		}
		name := strings.TrimPrefix(path.Clean("/"+string(data[off+110:nameEnd-1])), "/")
		off = (dataEnd + 3) &^ 3
		if name == "TRAILER!!!" {
			return min(off, len(data)), nil
		}
		c.names[name] = true
		if path.Base(name) == "modules.builtin" {
			for _, l := range strings.Split(string(data[dataStart:dataEnd]), "\n") {
				if l != "" {
					c.builtin[l] = true
				}
			}
		}
	}
}
