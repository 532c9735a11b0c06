package layer

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/strata-build/packer-plugin-strata/internal/treetar"
)

// ImportBlob describes a compressed layer blob fetched from elsewhere (a
// registry): what it must hash to before it may enter the store.
type ImportBlob struct {
	DiffID      string // sha256 of the uncompressed tar
	Digest      string // sha256 of the compressed bytes
	Size        int64  // of the compressed bytes
	Compression string // Gzip or Zstd
}

// ErrDigestMismatch is returned (wrapped) for a blob whose bytes do not have
// the digest or DiffID it was announced with.
var ErrDigestMismatch = errors.New("content does not match its digest")

// ImportLayer adds the layer a compressed OCI layer blob holds, read from
// open, unless the store has it. The blob is checked against its digest and
// size, and its tar against the DiffID, while it is unpacked into a staging
// dir in one pass; only a layer that matches is renamed into place, with the
// blob kept as its cached blob (so a later push of the same layer names the
// same digest). b.Size must be given (> 0): no more is ever read.
// Concurrent imports of one layer, in any process, fetch it once: the
// others wait for the pull lock, then find the layer stored. The layer
// comes back held (see lock.go).
// fetched says whether this call fetched it.
func (s *Store) ImportLayer(ctx context.Context, b ImportBlob, open func(context.Context) (io.ReadCloser, error)) (l *Layer, fetched bool, release func(), err error) {
	h, err := hexOf(b.DiffID)
	if err != nil {
		return nil, false, nil, err
	}
	if _, err := hexOf(b.Digest); err != nil {
		return nil, false, nil, err
	}
	if b.Compression != Gzip && b.Compression != Zstd {
		return nil, false, nil, fmt.Errorf("layer %s: compression %q: only gzip and zstd layers can be imported", b.DiffID, b.Compression)
	}
	if b.Size <= 0 {
		return nil, false, nil, fmt.Errorf("blob %s: its size is given as %d: a layer blob must have its size announced (reads stop there)", b.Digest, b.Size)
	}
	if l, release, err := s.holdLayer(b.DiffID); !errors.Is(err, ErrNotFound) {
		return l, false, release, err
	}
	unlock, err := s.pullLock(ctx, h)
	if err != nil {
		return nil, false, nil, err
	}
	defer unlock()
	if l, release, err := s.holdLayer(b.DiffID); !errors.Is(err, ErrNotFound) {
		return l, false, release, err
	}
	staged, releaseStaging, err := s.staging("pull-")
	if err != nil {
		return nil, false, nil, err
	}
	defer releaseStaging()
	fail := func(err error) (*Layer, bool, func(), error) {
		os.RemoveAll(staged)
		return nil, false, nil, err
	}
	size, entries, err := fetchLayer(ctx, b, open, staged)
	if err != nil {
		return fail(err)
	}
	l = &Layer{DiffID: b.DiffID, Size: size, Entries: entries, Created: time.Now().UTC()}
	meta, _ := json.MarshalIndent(l, "", "  ")
	if err := writeSynced(filepath.Join(staged, layerMeta), append(meta, '\n')); err != nil {
		return fail(err)
	}
	if err := writeSynced(filepath.Join(staged, lockFile), nil); err != nil {
		return fail(err)
	}
	// The blob the registry had is kept as the layer's blob, with its
	// metadata in one rename, before the layer: a layer from another tool
	// cannot have it made again from its tree (another tar, another
	// DiffID), so a layer never appears without it. One left by an
	// earlier pull that stopped between the two renames is replaced when
	// its digest is not the registry's (pushed again, the layer must name
	// the digest it came as); nothing else writes a blob of a layer the
	// store lacks, and this import holds the layer's pull lock.
	bm := &Blob{DiffID: b.DiffID, Digest: b.Digest, Size: b.Size, Compression: b.Compression}
	if err := s.publishBlob(filepath.Join(staged, stagedBlob), filepath.Join(s.root, blobsDir, h+"."+b.Compression), bm, true); err != nil {
		return fail(err)
	}
	hold, err := lockShared(filepath.Join(staged, lockFile))
	if err != nil {
		return fail(err)
	}
	created, err := publish(staged, filepath.Join(s.root, layersDir, h))
	if err != nil {
		hold.Close()
		return fail(err)
	}
	if !created {
		hold.Close()
		os.RemoveAll(staged)
		l, release, err := s.holdLayer(b.DiffID)
		return l, false, release, err
	}
	if l, err = s.Layer(b.DiffID); err != nil {
		hold.Close()
		return nil, false, nil, err
	}
	return l, true, func() { hold.Close() }, nil
}

// pullLock takes tmp/pull-<hex>.lock exclusively, waiting for another
// import of the same layer to finish, or for ctx to end.
func (s *Store) pullLock(ctx context.Context, h string) (func(), error) {
	p := filepath.Join(s.root, tmpDir, "pull-"+h+".lock")
	for {
		f, err := os.OpenFile(p, os.O_CREATE|os.O_RDWR|unix.O_NOFOLLOW, 0o600)
		if err != nil {
			return nil, err
		}
		if err := flockContext(ctx, f, unix.LOCK_EX); err != nil {
			f.Close()
			return nil, err
		}
		if !samePath(f, p) { // its holder finished and removed it
			f.Close()
			continue
		}
		return func() { os.Remove(p); f.Close() }, nil
	}
}

// tryPullLock takes h's pull lock if no import holds it.
func (s *Store) tryPullLock(h string) (func(), bool) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // do not wait
	unlock, err := s.pullLock(ctx, h)
	if err != nil {
		return nil, false
	}
	return unlock, true
}

// stagedBlob is the dir in a pull's staging dir that becomes the layer's
// blob dir (see publishBlob).
const stagedBlob = "blob"

// fetchLayer streams the blob into staged/blob/blob and, decompressed, into the
// tree staged/diff, checking digest, size and DiffID. Three stages overlap,
// joined by pipes: fetching (blob file and its hash), decompressing (and
// hashing the tar), unpacking.
func fetchLayer(ctx context.Context, b ImportBlob, open func(context.Context) (io.ReadCloser, error), staged string) (size, entries int64, err error) {
	rc, err := open(ctx)
	if err != nil {
		return 0, 0, err
	}
	defer rc.Close()
	if err := os.Mkdir(filepath.Join(staged, stagedBlob), 0o700); err != nil {
		return 0, 0, err
	}
	out, err := os.Create(filepath.Join(staged, stagedBlob, blobFile))
	if err != nil {
		return 0, 0, err
	}
	defer out.Close()
	dir := filepath.Join(staged, diffDir)
	if err := os.Mkdir(dir, 0o755); err != nil {
		return 0, 0, err
	}

	// Stage 1: the blob's bytes to its file, its hash and stage 2.
	blobHash := sha256.New()
	// The stages are joined by buffered pipes, so that no stage waits
	// for a slower one downstream while it has work: the download ends
	// (and the blob's fsync starts) as soon as the bytes are in, and
	// decompressing, the longest stage, does not stall while a file is
	// being created.
	compressed := newBufPipe(64) // up to 64 chunks of ≤ 1 MiB
	toDecompress := compressed
	var blobN int64
	fetched, synced := make(chan error, 1), make(chan error, 1)
	go func() {
		// When a later stage stops (a corrupt stream), the rest is still
		// read, up to the announced size, so the error is the digest's.
		src := io.LimitReader(&countingReader{ctx: ctx, r: rc}, b.Size+1)
		downstream := true
		var spare []byte // once no stage reads on: one buffer for the rest
		var err error
		for {
			// Read into a chunk the pipe then owns: no copy on the way.
			var buf []byte
			if downstream {
				buf = toDecompress.chunk()[:256<<10]
			} else {
				if spare == nil {
					spare = make([]byte, 256<<10)
				}
				buf = spare
			}
			n, rerr := io.ReadAtLeast(src, buf, len(buf))
			if rerr == io.ErrUnexpectedEOF {
				rerr = io.EOF
			}
			if n > 0 {
				blobN += int64(n)
				if _, werr := out.Write(buf[:n]); werr != nil {
					err = werr
					break
				}
				blobHash.Write(buf[:n])
				if downstream && toDecompress.send(buf[:n]) != nil {
					downstream = false
				}
			}
			if rerr == io.EOF {
				break
			}
			if rerr != nil {
				err = rerr
				break
			}
		}
		toDecompress.CloseWrite(err)
		// The blob is whole: it goes to disk while the tree is still
		// being unpacked, not after.
		if err == nil {
			synced <- out.Sync()
		} else {
			synced <- nil
		}
		fetched <- err
	}()

	// Stage 2: decompress, hand the tar to stage 3. Decompressing is the
	// longest stage, so the tar is hashed in stage 3.
	diffHash := sha256.New()
	tarR := newBufPipe(32)
	toUntar := tarR
	var tarN int64
	decompressed := make(chan error, 1)
	go func() {
		err := func() error {
			in := bufio.NewReaderSize(compressed, 1<<20)
			plain, err := decompressor(in, b.Compression)
			if err != nil {
				return err
			}
			defer plain.Close()
			for {
				// Whole chunks: fewer, larger hand-overs.
				chunk := toUntar.chunk()
				n, rerr := fill(plain, chunk)
				if n > 0 {
					tarN += int64(n)
					if err := toUntar.send(chunk[:n]); err != nil {
						return err
					}
				}
				if rerr == io.EOF {
					break
				}
				if rerr != nil {
					return rerr
				}
			}
			// Whatever follows the compressed stream still counts for the digest.
			_, err = io.Copy(io.Discard, in)
			return err
		}()
		toUntar.CloseWrite(err)
		stopped := err
		if stopped == nil {
			stopped = io.ErrClosedPipe
		}
		compressed.CloseRead(stopped) // stops stage 1 when this stage failed
		decompressed <- err
	}()

	// Stage 3: hash the tar and unpack it, then read its end (its padding
	// blocks).
	tr := bufio.NewReaderSize(io.TeeReader(tarR, diffHash), 1<<20)
	entries, uerr := untar(tr, dir)
	if uerr == nil {
		_, uerr = io.Copy(io.Discard, tr)
	}
	tarR.CloseRead(errUnpackingStopped)
	derr := <-decompressed
	ferr := <-fetched
	// All the bytes came and they are not the blob: that, whatever a
	// verifying reader below said; else a fetch that broke off.
	got := "sha256:" + hex.EncodeToString(blobHash.Sum(nil))
	if got != b.Digest && (ferr == nil || blobN == b.Size) {
		return 0, 0, fmt.Errorf("blob %s: %w: its bytes hash to %s (%d bytes, want %d)", b.Digest, ErrDigestMismatch, got, blobN, b.Size)
	}
	if ferr != nil {
		return 0, 0, fmt.Errorf("fetching blob %s: %w", b.Digest, ferr)
	}
	if blobN != b.Size {
		return 0, 0, fmt.Errorf("blob %s: %w: %d bytes, want %d", b.Digest, ErrDigestMismatch, blobN, b.Size)
	}
	// Unpacking that refused a member stops decompressing: the refusal
	// is the error to tell.
	if derr != nil && !(uerr != nil && errors.Is(derr, errUnpackingStopped)) {
		return 0, 0, fmt.Errorf("decompressing blob %s: %w", b.Digest, derr)
	}
	if uerr != nil {
		return 0, 0, fmt.Errorf("unpacking blob %s: %w", b.Digest, uerr)
	}
	if got := "sha256:" + hex.EncodeToString(diffHash.Sum(nil)); got != b.DiffID {
		return 0, 0, fmt.Errorf("blob %s: %w: it decompresses to %s, not its DiffID %s", b.Digest, ErrDigestMismatch, got, b.DiffID)
	}
	if err := <-synced; err != nil {
		return 0, 0, fmt.Errorf("blob %s: %w", b.Digest, err)
	}
	if err := syncTree(dir, entries); err != nil {
		return 0, 0, err
	}
	return tarN, entries, nil
}

// errUnpackingStopped is what the decompressing stage's sends get once
// the unpacking stage stopped.
var errUnpackingStopped = errors.New("unpacking stopped")

// fill reads r until buf is full or r ends. Only r's own io.EOF is its
// end: a decompressor's io.ErrUnexpectedEOF (a stream cut short, its
// checksum trailer missing) stays an error, which io.ReadFull would not
// tell apart from a short last chunk.
func fill(r io.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// bufPipe is an io.Pipe with a buffer: up to n sent chunks wait for the
// reader, so the writer goes on while the reader is busy. A chunk (from
// chunk) is handed over by send, not copied. CloseWrite ends the stream
// (the reader gets the error, or io.EOF, after the buffered chunks);
// CloseRead makes every later send fail with the reader's error.
type bufPipe struct {
	ch        chan []byte
	stop      chan struct{}
	stopOnce  sync.Once
	closeOnce sync.Once
	rerr      error // set before stop is closed
	werr      error // set before ch is closed
	cur, buf  []byte
}

func newBufPipe(n int) *bufPipe {
	return &bufPipe{ch: make(chan []byte, n), stop: make(chan struct{})}
}

var chunkPool = sync.Pool{New: func() any { return make([]byte, 0, 1<<20) }}

// chunk is an empty buffer of 1 MiB for send.
func (p *bufPipe) chunk() []byte { return chunkPool.Get().([]byte)[:1<<20] }

// send hands c (from chunk) to the reader without copying it: the pipe
// owns it from now on, whether or not send succeeds.
func (p *bufPipe) send(c []byte) error {
	select {
	case <-p.stop:
		chunkPool.Put(c[:0])
		return p.rerr
	default:
	}
	select {
	case p.ch <- c:
		return nil
	case <-p.stop:
		chunkPool.Put(c[:0])
		return p.rerr
	}
}

func (p *bufPipe) CloseWrite(err error) {
	p.closeOnce.Do(func() { p.werr = err; close(p.ch) })
}

func (p *bufPipe) Read(b []byte) (int, error) {
	for len(p.cur) == 0 {
		if p.buf != nil && cap(p.buf) == 1<<20 {
			chunkPool.Put(p.buf[:0])
		}
		p.buf, p.cur = nil, nil
		c, ok := <-p.ch
		if !ok {
			if p.werr != nil {
				return 0, p.werr
			}
			return 0, io.EOF
		}
		p.buf, p.cur = c, c
	}
	n := copy(b, p.cur)
	p.cur = p.cur[n:]
	return n, nil
}

func (p *bufPipe) CloseRead(err error) {
	p.stopOnce.Do(func() { p.rerr = err; close(p.stop) })
}

type countingReader struct {
	ctx context.Context
	r   io.Reader
	n   int64
}

func (c *countingReader) Read(b []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := c.r.Read(b)
	c.n += int64(n)
	return n, err
}

// Untar unpacks an OCI layer tar into dir (a new, empty directory) in
// overlayfs form, the form Commit stores: ".wh.NAME" becomes a 0/0 character
// device, ".wh..wh..opq" the trusted.overlay.opaque attribute. Owners,
// modes (setuid bits too), times, extended attributes, hard links and FIFOs
// are kept. A member that would land outside dir, or go through a symlink,
// is refused, and so is a device node other than a 0/0 whiteout or one of
// harmlessDevices (allowedNode).
func Untar(r io.Reader, dir string) error {
	_, err := untar(r, dir)
	return err
}

// untar is Untar, counting the entries it makes (what a walk of dir
// afterwards would count, without the walk).
func untar(r io.Reader, dir string) (entries int64, err error) {
	tr := tar.NewReader(r)
	type dirTime struct {
		p string
		t time.Time
	}
	var dirs []dirTime
	// Directories this unpacking made or found real: entries below them
	// need no check (nothing replaces a directory: every create is
	// exclusive).
	real := map[string]bool{".": true}
	w := newFileWriters(4)
	defer func() { w.wait(); w.stop() }()
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return entries, err
		}
		rel := path.Clean(strings.TrimPrefix(hdr.Name, "./"))
		if rel == "." || rel == "" {
			continue
		}
		if path.IsAbs(rel) || rel == ".." || strings.HasPrefix(rel, "../") {
			return entries, fmt.Errorf("tar member %q is outside the layer", hdr.Name)
		}
		if parent := path.Dir(rel); !real[parent] {
			if err := realParent(dir, rel); err != nil {
				return entries, err
			}
			real[parent] = true
		}
		p := filepath.Join(dir, filepath.FromSlash(rel))
		base := path.Base(rel)
		mtime := hdr.ModTime
		switch {
		case base == treetar.WhiteoutOpaque:
			parent := filepath.Dir(p)
			if err := unix.Lsetxattr(parent, "trusted.overlay.opaque", []byte("y"), 0); err != nil {
				return entries, fmt.Errorf("marking %s opaque: %w", path.Dir(rel), err)
			}
			continue
		case strings.HasPrefix(base, treetar.WhiteoutPrefix):
			p = filepath.Join(filepath.Dir(p), strings.TrimPrefix(base, treetar.WhiteoutPrefix))
			if err := unix.Mknod(p, unix.S_IFCHR, 0); err != nil {
				return entries, fmt.Errorf("whiteout %s: %w", hdr.Name, err)
			}
			entries++
			if err := setTimes(p, mtime); err != nil {
				return entries, err
			}
			continue
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.Mkdir(p, 0o700); err == nil {
				entries++
			} else if !errors.Is(err, os.ErrExist) {
				return entries, err
			}
			if fi, err := os.Lstat(p); err != nil || !fi.IsDir() {
				return entries, fmt.Errorf("tar member %q: not a directory in the layer", hdr.Name)
			}
			real[rel] = true
			dirs = append(dirs, dirTime{p, mtime})
		case tar.TypeReg:
			_, sparse := hdr.PAXRecords["GNU.sparse.major"]
			if !sparse && hdr.Size <= smallFile {
				// Small files are created by workers, several at once:
				// creating files, not reading the stream, is the slow part.
				data := make([]byte, hdr.Size)
				if _, err := io.ReadFull(tr, data); err != nil {
					return entries, fmt.Errorf("reading %s: %w", hdr.Name, err)
				}
				if err := w.add(p, hdr, data); err != nil {
					return entries, err
				}
				entries++
				continue
			}
			f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY|unix.O_NOFOLLOW, 0o600)
			if err != nil {
				return entries, err
			}
			entries++
			if err := copySparse(f, tr, hdr.Size, sparse); err != nil {
				f.Close()
				return entries, fmt.Errorf("writing %s: %w", hdr.Name, err)
			}
			if err := applyMetaFd(int(f.Fd()), hdr); err != nil {
				f.Close()
				return entries, err
			}
			if err := f.Close(); err != nil {
				return entries, err
			}
			continue
		case tar.TypeLink:
			target := path.Clean(strings.TrimPrefix(hdr.Linkname, "./"))
			if path.IsAbs(target) || target == ".." || strings.HasPrefix(target, "../") {
				return entries, fmt.Errorf("hard link %q points outside the layer", hdr.Name)
			}
			if err := realParent(dir, target); err != nil {
				return entries, err
			}
			if err := w.wait(); err != nil { // the target may be a worker's
				return entries, err
			}
			if err := os.Link(filepath.Join(dir, filepath.FromSlash(target)), p); err != nil {
				return entries, err
			}
			entries++
			continue // its owner, mode and times are the target's
		case tar.TypeSymlink:
			if err := os.Symlink(hdr.Linkname, p); err != nil {
				return entries, err
			}
			entries++
		case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
			if err := allowedNode(hdr); err != nil {
				return entries, fmt.Errorf("tar member %q: %w", rel, err)
			}
			mode := uint32(unix.S_IFIFO)
			if hdr.Typeflag == tar.TypeChar {
				mode = unix.S_IFCHR
			} else if hdr.Typeflag == tar.TypeBlock {
				mode = unix.S_IFBLK
			}
			if err := unix.Mknod(p, mode|0o600, int(unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor)))); err != nil {
				return entries, fmt.Errorf("%s: %w", hdr.Name, err)
			}
			entries++
		default:
			return entries, fmt.Errorf("tar member %q has a type (%q) a layer cannot hold", hdr.Name, hdr.Typeflag)
		}
		if err := applyMeta(p, hdr, mtime); err != nil {
			return entries, err
		}
	}
	if err := w.wait(); err != nil {
		return entries, err
	}
	// Directory times last, deepest first: making their entries changed them.
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := setTimes(dirs[i].p, dirs[i].t); err != nil {
			return entries, err
		}
	}
	return entries, nil
}

// harmlessDevices are the character devices a layer may create besides
// whiteouts: the ones every container runtime gives a container (the OCI
// runtime spec's default devices), which a Debian bootstrap (mmdebstrap,
// debootstrap) leaves in /dev: null, zero, full, random, urandom, tty,
// console, ptmx. Each is major<<32|minor.
var harmlessDevices = map[int64]bool{1<<32 | 3: true, 1<<32 | 5: true, 1<<32 | 7: true, 1<<32 | 8: true, 1<<32 | 9: true,
	5<<32 | 0: true, 5<<32 | 1: true, 5<<32 | 2: true}

// allowedNode refuses a device node a layer from elsewhere must not
// create: any block device, any character device but an overlay whiteout
// (0/0) and harmlessDevices. A hostile image would otherwise give whoever
// uses it (a build's chroot, a dir or disk output) a node of the host's
// disks or memory. FIFOs are fine.
func allowedNode(hdr *tar.Header) error {
	switch hdr.Typeflag {
	case tar.TypeFifo:
		return nil
	case tar.TypeChar:
		if (hdr.Devmajor == 0 && hdr.Devminor == 0) || harmlessDevices[hdr.Devmajor<<32|hdr.Devminor] {
			return nil
		}
		return fmt.Errorf("a character device %d:%d; a pulled layer may hold no device node but whiteouts and /dev/null's kind", hdr.Devmajor, hdr.Devminor)
	}
	return fmt.Errorf("a block device %d:%d; a pulled layer may hold no device node but whiteouts and /dev/null's kind", hdr.Devmajor, hdr.Devminor)
}

// applyMeta gives p the owner, extended attributes, mode and (unless a
// directory, whose time is set last) modification time hdr says.
func applyMeta(p string, hdr *tar.Header, mtime time.Time) error {
	if err := unix.Lchown(p, hdr.Uid, hdr.Gid); err != nil {
		return fmt.Errorf("chown %s: %w", hdr.Name, err)
	}
	if err := setXattrs(hdr, func(name string, v []byte) error { return unix.Lsetxattr(p, name, v, 0) }); err != nil {
		return err
	}
	if hdr.Typeflag != tar.TypeSymlink {
		// After chown, which clears set-id bits.
		if err := unix.Fchmodat(unix.AT_FDCWD, p, uint32(hdr.Mode&0o7777), 0); err != nil {
			return fmt.Errorf("chmod %s: %w", hdr.Name, err)
		}
	}
	if hdr.Typeflag != tar.TypeDir {
		if err := setTimes(p, mtime); err != nil {
			return err
		}
	}
	return nil
}

// smallFile is the largest file a worker writes from memory.
const smallFile = 1 << 20

// fileWriters create small files with their metadata, several at once.
type fileWriters struct {
	jobs chan fileJob
	wg   sync.WaitGroup // pending jobs
	mu   sync.Mutex
	err  error
}

type fileJob struct {
	p    string
	hdr  *tar.Header
	data []byte
}

func newFileWriters(n int) *fileWriters {
	w := &fileWriters{jobs: make(chan fileJob, 64)}
	for i := 0; i < n; i++ {
		go func() {
			for j := range w.jobs {
				if err := writeFile(j); err != nil {
					w.mu.Lock()
					if w.err == nil {
						w.err = err
					}
					w.mu.Unlock()
				}
				w.wg.Done()
			}
		}()
	}
	return w
}

func (w *fileWriters) add(p string, hdr *tar.Header, data []byte) error {
	w.mu.Lock()
	err := w.err
	w.mu.Unlock()
	if err != nil {
		return err
	}
	w.wg.Add(1)
	w.jobs <- fileJob{p, hdr, data}
	return nil
}

// wait waits for the pending files and returns the first error. Called
// last (deferred again), it also stops the workers.
func (w *fileWriters) wait() error {
	w.wg.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

func (w *fileWriters) stop() { close(w.jobs) }

func writeFile(j fileJob) error {
	f, err := os.OpenFile(j.p, os.O_CREATE|os.O_EXCL|os.O_WRONLY|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(j.data); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", j.hdr.Name, err)
	}
	if err := applyMetaFd(int(f.Fd()), j.hdr); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// setXattrs sets, with set, the extended attributes hdr carries; one in
// trusted.overlay.*, which only the store sets, is refused.
func setXattrs(hdr *tar.Header, set func(name string, v []byte) error) error {
	for k, v := range hdr.PAXRecords {
		if name, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
			if strings.HasPrefix(name, "trusted.overlay.") {
				return fmt.Errorf("tar member %q carries %s, which only the store sets", hdr.Name, name)
			}
			if err := set(name, []byte(v)); err != nil {
				return fmt.Errorf("xattr %s on %s: %w", name, hdr.Name, err)
			}
		}
	}
	return nil
}

// applyMetaFd is applyMeta for a regular file this unpacking created and
// holds open: the same calls on the descriptor, without a path lookup each.
func applyMetaFd(fd int, hdr *tar.Header) error {
	if err := unix.Fchown(fd, hdr.Uid, hdr.Gid); err != nil {
		return fmt.Errorf("chown %s: %w", hdr.Name, err)
	}
	if err := setXattrs(hdr, func(name string, v []byte) error { return unix.Fsetxattr(fd, name, v, 0) }); err != nil {
		return err
	}
	// After chown, which clears set-id bits.
	if err := unix.Fchmod(fd, uint32(hdr.Mode&0o7777)); err != nil {
		return fmt.Errorf("chmod %s: %w", hdr.Name, err)
	}
	ts := unix.NsecToTimespec(hdr.ModTime.UnixNano())
	times := [2]unix.Timespec{ts, ts}
	// utimensat(fd, NULL, times, 0): the open file itself.
	if _, _, errno := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(fd), 0, uintptr(unsafe.Pointer(&times[0])), 0, 0, 0); errno != 0 {
		return fmt.Errorf("times of %s: %w", hdr.Name, errno)
	}
	return nil
}

// realParent checks that every directory above rel inside dir is a real
// directory, no symlink: a hostile layer cannot write through one.
func realParent(dir, rel string) error {
	parts := strings.Split(path.Dir(rel), "/")
	p := dir
	for _, part := range parts {
		if part == "." {
			continue
		}
		p = filepath.Join(p, part)
		fi, err := os.Lstat(p)
		if err != nil {
			return fmt.Errorf("tar member %q: its directory %s: %w", rel, part, err)
		}
		if !fi.IsDir() {
			return fmt.Errorf("tar member %q lies below %s, which is no directory (a symlink?)", rel, part)
		}
	}
	return nil
}

func setTimes(p string, t time.Time) error {
	ts := unix.NsecToTimespec(t.UnixNano())
	return unix.UtimesNanoAt(unix.AT_FDCWD, p, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW)
}

// copySparse writes n bytes of r to f. A sparse file (a PAX sparse entry)
// gets its whole zero blocks as holes, so it stays sparse.
func copySparse(f *os.File, r io.Reader, n int64, sparse bool) error {
	if !sparse {
		_, err := io.CopyN(f, r, n)
		return err
	}
	const block = 4 << 10
	buf := make([]byte, block)
	var off int64
	for off < n {
		want := int64(block)
		if n-off < want {
			want = n - off
		}
		if _, err := io.ReadFull(r, buf[:want]); err != nil {
			return err
		}
		if want == block && allZero(buf) {
			off += want
			continue
		}
		if _, err := f.WriteAt(buf[:want], off); err != nil {
			return err
		}
		off += want
	}
	return f.Truncate(n)
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// ImportImage stores the image whose OCI config is config, byte for byte
// (its ID is the config's digest), over layers the store has already
// (ImportLayer), its parent image ID when known. It comes back held, as
// PutImage's does.
func (s *Store) ImportImage(config []byte, parent string) (*Image, bool, func(), error) {
	img := &Image{ID: ImageID(config), Parent: parent, Config: config}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, false, nil, fmt.Errorf("image %s: its config: %w", img.ID, err)
	}
	img.Created = cfg.Created.UTC()
	for _, d := range cfg.RootFS.DiffIDs {
		l, err := s.Layer(d.String())
		if err != nil {
			return nil, false, nil, fmt.Errorf("image %s: %w", img.ID, err)
		}
		img.Layers = append(img.Layers, LayerRef{DiffID: l.DiffID, Size: l.Size})
	}
	return s.storeImage(img)
}
