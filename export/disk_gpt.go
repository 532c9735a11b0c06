package export

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/strata-build/packer-plugin-strata/internal/debarch"
)

// GPT partition type UUIDs of the Discoverable Partitions Specification, so
// that systemd-gpt-auto-generator finds the partitions too. The root's is
// per architecture (debarch.Disk.RootType).
const ESPType = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b"

// The root partition types of the architectures disks are made for.
var (
	RootX8664Type = rootType("amd64")
	RootArm64Type = rootType("arm64")
)

func rootType(arch string) string {
	a, _ := debarch.Lookup(arch)
	return a.Disk.RootType
}

// partition is one partition of a disk: a file system image on the host
// written into place.
type partition struct {
	name, typ, uuid string
	img             string
	size            int64 // bytes, a multiple of 1 MiB
	readOnly        bool  // the GPT read-only attribute (bit 60)
	start           int64 // bytes, filled in by layout
}

// gptAlign is where partitions start and the space the GPT takes at each
// end of the disk (the backup GPT needs 33 sectors).
const gptAlign = 1 << 20

// layoutGPT places the partitions one after another, 1 MiB aligned, and
// returns the disk's size.
func layoutGPT(parts []partition) int64 {
	off := int64(gptAlign)
	for i := range parts {
		parts[i].start = off
		off += alignUp(parts[i].size, gptAlign)
	}
	return off + gptAlign
}

// sfdiskScript is the partition table, every identifier in it given, so
// sfdisk writes the same table every time.
func sfdiskScript(diskGUID string, parts []partition) string {
	var b strings.Builder
	fmt.Fprintf(&b, "label: gpt\nlabel-id: %s\nunit: sectors\nsector-size: 512\nfirst-lba: %d\n\n", diskGUID, gptAlign/512)
	for _, p := range parts {
		fmt.Fprintf(&b, "start=%d, size=%d, type=%s, uuid=%s, name=%q", p.start/512, alignUp(p.size, gptAlign)/512, p.typ, p.uuid, p.name)
		if p.readOnly {
			b.WriteString(", attrs=\"GUID:60\"")
		}
		b.WriteString("\n")
	}
	return b.String()
}

// assembleGPT writes a sparse disk image at out: the GPT by sfdisk on the
// file (no loop device, nothing mounted), then each partition's image
// copied to its offset, holes left where the image has only zeros.
func (e *exporter) assembleGPT(out, diskGUID string, parts []partition) (int64, error) {
	total := layoutGPT(parts)
	os.Remove(out)
	f, err := os.OpenFile(out, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	if err := f.Truncate(total); err != nil {
		return 0, err
	}
	cmd := e.command(nil, "sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", "--wipe", "always", out)
	cmd.Stdin = strings.NewReader(sfdiskScript(diskGUID, parts))
	if err := e.runCmd(cmd); err != nil {
		return 0, err
	}
	for _, p := range parts {
		if err := copySparse(f, p.img, p.start, p.size); err != nil {
			return 0, fmt.Errorf("writing the %s partition: %w", p.name, err)
		}
	}
	return total, f.Sync()
}

// copySparse copies the file src into dst at off, skipping the blocks of
// zeros (dst is new and sparse: they read as zeros already). src must fit
// in limit bytes.
func copySparse(dst *os.File, src string, off, limit int64) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if fi, err := in.Stat(); err != nil {
		return err
	} else if fi.Size() > limit {
		return fmt.Errorf("%s is %d bytes, more than its partition's %d", src, fi.Size(), limit)
	}
	buf := make([]byte, 1<<20)
	zero := make([]byte, len(buf))
	for pos := off; ; {
		n, err := io.ReadFull(in, buf)
		if n > 0 && !bytes.Equal(buf[:n], zero[:n]) {
			if _, werr := dst.WriteAt(buf[:n], pos); werr != nil {
				return werr
			}
		}
		pos += int64(n)
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
