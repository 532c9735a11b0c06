package registry

import (
	"archive/tar"
	"io"
	"log"
)

func log_discard() *log.Logger { return log.New(io.Discard, "", 0) }

type tarW struct{ tw *tar.Writer }

func newTar(w io.Writer) *tarW { return &tarW{tw: tar.NewWriter(w)} }

func (t *tarW) symlink(name, target string) {
	t.tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeSymlink, Linkname: target})
}

func (t *tarW) file(name, content string) {
	t.tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(content))})
	t.tw.Write([]byte(content))
}

func (t *tarW) close() error { return t.tw.Close() }
