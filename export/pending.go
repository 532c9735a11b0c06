package export

import (
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"io"
	"os"
	"path/filepath"
)

// pendingFile is an output being written under a temporary name.
type pendingFile struct {
	f     *os.File
	final string
	h     hash.Hash
	n     int64
}

func createPending(final string) (*pendingFile, error) {
	f, err := os.CreateTemp(filepath.Dir(final), "."+filepath.Base(final)+".tmp-*")
	if err != nil {
		return nil, err
	}
	return &pendingFile{f: f, final: final, h: sha256.New()}, nil
}

func (p *pendingFile) Write(b []byte) (int, error) {
	n, err := p.f.Write(b)
	p.h.Write(b[:n])
	p.n += int64(n)
	return n, err
}

func (p *pendingFile) abort() {
	p.f.Close()
	os.Remove(p.f.Name())
}

// finish syncs the file and renames it into place.
func (p *pendingFile) finish(mode os.FileMode) error {
	err := p.f.Sync()
	if cerr := p.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(p.f.Name(), mode)
	}
	if err == nil {
		err = os.Rename(p.f.Name(), p.final)
	}
	if err != nil {
		os.Remove(p.f.Name())
	}
	return err
}

// commit finishes the output and writes the checksum file beside it.
func (p *pendingFile) commit(format string) (Output, error) {
	if err := p.finish(0o644); err != nil {
		return Output{}, err
	}
	sum := hex.EncodeToString(p.h.Sum(nil))
	if err := writeChecksum(p.final, sum); err != nil {
		return Output{}, err
	}
	return Output{Format: format, Path: p.final, Size: p.n, SHA256: sum}, nil
}

// writeChecksum writes "<path>.sha256" in sha256sum(1) format, so that
// `sha256sum -c rootfs.tar.zst.sha256` works from the output directory.
func writeChecksum(path, sum string) error {
	return WriteFileAtomic(path+".sha256", []byte(sum+"  "+filepath.Base(path)+"\n"), 0o644)
}

// WriteFileAtomic writes data to a temporary file beside path, syncs it and
// renames it over path.
func WriteFileAtomic(path string, data []byte, mode os.FileMode) error {
	p, err := createPending(path)
	if err != nil {
		return err
	}
	if _, err := p.Write(data); err != nil {
		p.abort()
		return err
	}
	return p.finish(mode)
}

// FileSHA256 hashes a file.
func FileSHA256(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}
