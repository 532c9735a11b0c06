package treetar

import (
	"archive/tar"
	"errors"
	"fmt"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// segment is a run of data in a file; everything between segments is a hole.
type segment struct{ offset, length int64 }

// dataSegments lists where p holds data, by SEEK_DATA and SEEK_HOLE.
func dataSegments(p string, size int64) ([]segment, error) {
	f, err := os.OpenFile(p, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fd := int(f.Fd())
	var segs []segment
	for off := int64(0); off < size; {
		data, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			break // only a hole up to the end
		}
		if err != nil {
			// No SEEK_DATA on this file system: all of it is data.
			return []segment{{0, size}}, nil
		}
		hole, err := unix.Seek(fd, data, unix.SEEK_HOLE)
		if err != nil {
			return []segment{{0, size}}, nil
		}
		if hole > size {
			hole = size
		}
		segs = append(segs, segment{data, hole - data})
		off = hole
	}
	return segs, nil
}

// holes says whether segs leave any part of a file of size unwritten.
func holes(segs []segment, size int64) bool {
	if segs == nil {
		return false
	}
	var n int64
	for _, s := range segs {
		n += s.length
	}
	return n < size
}

// Limits of the octal fields of a ustar header.
const (
	maxOctal8  = 1<<21 - 1 // uid, gid
	maxOctal12 = 1<<33 - 1 // size
)

// addSparse writes a regular file with holes as a PAX 1.0 sparse entry: an
// extended header with GNU.sparse.* records (Go's tar writer leaves those
// out, so this header is written here), then a ustar entry whose data is the
// sparse map followed by the data segments only.
func (w *writer) addSparse(p string, hdr *tar.Header, segs []segment) error {
	// The map always ends at the real size, so a trailing hole survives.
	if len(segs) == 0 || segs[len(segs)-1].offset+segs[len(segs)-1].length < hdr.Size {
		segs = append(segs, segment{hdr.Size, 0})
	}
	var m strings.Builder
	fmt.Fprintf(&m, "%d\n", len(segs))
	var data int64
	for _, s := range segs {
		fmt.Fprintf(&m, "%d\n%d\n", s.offset, s.length)
		data += s.length
	}
	mapBlock := []byte(m.String())
	mapBlock = append(mapBlock, make([]byte, pad(int64(len(mapBlock))))...)
	stored := int64(len(mapBlock)) + data

	recs := map[string]string{
		"GNU.sparse.major":    "1",
		"GNU.sparse.minor":    "0",
		"GNU.sparse.name":     strings.TrimSuffix(hdr.Name, "/"),
		"GNU.sparse.realsize": strconv.FormatInt(hdr.Size, 10),
		"mtime":               formatPAXTime(hdr.ModTime.Unix(), int64(hdr.ModTime.Nanosecond())),
	}
	for k, v := range hdr.PAXRecords {
		recs[k] = v
	}
	uid, gid := hdr.Uid, hdr.Gid
	if uid > maxOctal8 {
		recs["uid"], uid = strconv.Itoa(uid), 0
	}
	if gid > maxOctal8 {
		recs["gid"], gid = strconv.Itoa(gid), 0
	}
	if stored > maxOctal12 {
		return fmt.Errorf("%s: a sparse file with more than 8 GiB of data is not supported", hdr.Name)
	}
	var body strings.Builder
	keys := make([]string, 0, len(recs))
	for k := range recs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		body.WriteString(paxRecord(k, recs[k]))
	}

	base := path.Base(strings.TrimSuffix(hdr.Name, "/"))
	if len(base) > 80 {
		base = base[:80]
	}
	if err := w.tw.Flush(); err != nil {
		return err
	}
	x := ustarBlock("./PaxHeaders.0/"+base, int64(body.Len()), 'x', hdr.ModTime.Unix(), 0o644)
	xbody := []byte(body.String())
	xbody = append(xbody, make([]byte, pad(int64(len(xbody))))...)
	if _, err := w.raw.Write(append(x, xbody...)); err != nil {
		return err
	}
	main := &tar.Header{
		Name:     "./GNUSparseFile.0/" + base,
		Typeflag: tar.TypeReg,
		Mode:     hdr.Mode,
		Uid:      uid,
		Gid:      gid,
		Size:     stored,
		ModTime:  hdr.ModTime.Truncate(1e9),
		Format:   tar.FormatUSTAR,
	}
	if err := w.tw.WriteHeader(main); err != nil {
		return fmt.Errorf("tar header for %s: %w", hdr.Name, err)
	}
	if _, err := w.tw.Write(mapBlock); err != nil {
		return err
	}
	return w.copyFile(p, hdr.Name, segs)
}

func pad(n int64) int64 { return (512 - n%512) % 512 }

// paxRecord formats "LEN key=value\n", where LEN counts the whole record.
func paxRecord(k, v string) string {
	n := len(k) + len(v) + 3 // space, '=', newline
	n += len(strconv.Itoa(n))
	rec := strconv.Itoa(n) + " " + k + "=" + v + "\n"
	if len(rec) != n { // the length's own digits tipped it over
		n = len(rec)
		rec = strconv.Itoa(n) + " " + k + "=" + v + "\n"
	}
	return rec
}

func formatPAXTime(sec, nsec int64) string {
	if nsec == 0 {
		return strconv.FormatInt(sec, 10)
	}
	return strings.TrimRight(fmt.Sprintf("%d.%09d", sec, nsec), "0")
}

// ustarBlock is one 512-byte ustar header.
func ustarBlock(name string, size int64, typeflag byte, mtime int64, mode int64) []byte {
	b := make([]byte, 512)
	copy(b[0:100], name)
	octal(b[100:108], mode)
	octal(b[108:116], 0)
	octal(b[116:124], 0)
	octal(b[124:136], size)
	octal(b[136:148], mtime)
	b[156] = typeflag
	copy(b[257:263], "ustar\x00")
	copy(b[263:265], "00")
	for i := 148; i < 156; i++ {
		b[i] = ' '
	}
	var sum int64
	for _, c := range b {
		sum += int64(c)
	}
	copy(b[148:156], fmt.Sprintf("%06o\x00 ", sum))
	return b
}

// octal writes n zero-padded, NUL-terminated, into field.
func octal(field []byte, n int64) {
	s := strconv.FormatInt(n, 8)
	s = strings.Repeat("0", len(field)-1-len(s)) + s
	copy(field, s)
	field[len(field)-1] = 0
}
