// Package fanout writes one stream to several writers at once, each in its
// own goroutine: hashing, compressing and writing run beside the producer
// instead of after it on one core.
package fanout

import (
	"io"
	"sync"
)

// Writer writes everything it gets to several writers, each in its own
// goroutine. Chunks are copied once and shared.
type Writer struct {
	chans []chan []byte
	wg    sync.WaitGroup
	mu    sync.Mutex
	err   error
	buf   []byte
}

const fanoutChunk = 1 << 20

// New fans out to ws.
func New(ws ...io.Writer) *Writer {
	f := &Writer{buf: make([]byte, 0, fanoutChunk)}
	for _, w := range ws {
		ch := make(chan []byte, 8)
		f.chans = append(f.chans, ch)
		f.wg.Add(1)
		go func(w io.Writer) {
			defer f.wg.Done()
			for b := range ch {
				if f.failed() {
					continue
				}
				if _, err := w.Write(b); err != nil {
					f.fail(err)
				}
			}
		}(w)
	}
	return f
}

func (f *Writer) failed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err != nil
}

func (f *Writer) fail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err == nil {
		f.err = err
	}
}

func (f *Writer) Write(p []byte) (int, error) {
	if f.failed() {
		return 0, f.err
	}
	n := len(p)
	for len(p) > 0 {
		room := cap(f.buf) - len(f.buf)
		if room > len(p) {
			room = len(p)
		}
		f.buf = append(f.buf, p[:room]...)
		p = p[room:]
		if len(f.buf) == cap(f.buf) {
			f.flush()
		}
	}
	return n, nil
}

func (f *Writer) flush() {
	if len(f.buf) == 0 {
		return
	}
	chunk := f.buf
	for _, ch := range f.chans {
		ch <- chunk
	}
	f.buf = make([]byte, 0, fanoutChunk)
}

// Close flushes, waits for every writer and returns the first error.
func (f *Writer) Close() error {
	f.flush()
	for _, ch := range f.chans {
		close(ch)
	}
	f.wg.Wait()
	return f.err
}
