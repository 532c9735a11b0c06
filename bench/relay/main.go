// Command relay stands in for a distant mirror: an HTTP reverse proxy on
// loopback to a real mirror whose responses, all together, get no more than
// -rate bytes a second. It prints its URL and serves until killed.
package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"sync"
	"time"
)

// bucket hands out bytes at a steady rate to every reader that asks.
type bucket struct {
	mu    sync.Mutex
	rate  float64
	avail float64
	last  time.Time
}

func (b *bucket) take(n int) {
	for {
		b.mu.Lock()
		now := time.Now()
		b.avail += now.Sub(b.last).Seconds() * b.rate
		if b.avail > b.rate/10 {
			b.avail = b.rate / 10 // bursts of at most 100 ms
		}
		b.last = now
		if b.avail >= float64(n) {
			b.avail -= float64(n)
			b.mu.Unlock()
			return
		}
		wait := time.Duration((float64(n) - b.avail) / b.rate * float64(time.Second))
		b.mu.Unlock()
		time.Sleep(wait)
	}
}

type slowBody struct {
	io.ReadCloser
	b *bucket
}

func (s *slowBody) Read(p []byte) (int, error) {
	if len(p) > 16<<10 {
		p = p[:16<<10]
	}
	n, err := s.ReadCloser.Read(p)
	if n > 0 {
		s.b.take(n)
	}
	return n, err
}

func main() {
	upstream := flag.String("upstream", "", "the mirror's URL")
	rate := flag.Int("rate", 2_000_000, "bytes per second for all responses together")
	flag.Parse()
	u, err := url.Parse(*upstream)
	if err != nil || u.Host == "" {
		fmt.Fprintln(os.Stderr, "relay: -upstream must be the mirror's URL")
		os.Exit(2)
	}
	b := &bucket{rate: float64(*rate), last: time.Now()}
	// Requests carry the mirror path themselves (the URL printed below).
	proxy := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: u.Scheme, Host: u.Host})
	director := proxy.Director
	proxy.Director = func(r *http.Request) {
		director(r)
		r.Host = u.Host
	}
	proxy.ModifyResponse = func(resp *http.Response) error {
		resp.Body = &slowBody{resp.Body, b}
		return nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("http://%s%s\n", ln.Addr(), u.Path)
	os.Stdout.Sync()
	http.Serve(ln, proxy)
}
