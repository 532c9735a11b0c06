package pkgcache

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"sync"
)

// tunnelKey is the context key of the host a CONNECT tunnel was opened to.
type tunnelKey struct{}

// connect answers CONNECT to the host of an https source: the connection
// becomes TLS with a certificate for that host from the build's authority,
// and its requests are served like the others, for https://HOST.
func (s *Server) connect(w http.ResponseWriter, r *http.Request) {
	if !s.origins.tunnels(r.Host) {
		err := fmt.Errorf("CONNECT %s: not the host of an https apt source of this build: refused", r.Host)
		s.warn(err.Error(), "package cache: "+err.Error())
		http.Error(w, err.Error(), http.StatusForbidden)
		return
	}
	host, _, err := net.SplitHostPort(r.Host)
	if err != nil {
		host = r.Host
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		http.Error(w, "cannot tunnel", http.StatusInternalServerError)
		return
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		return
	}
	if _, err := conn.Write([]byte("HTTP/1.1 200 Connection established\r\n\r\n")); err != nil {
		conn.Close()
		return
	}
	tc := tls.Server(conn, &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return s.ca.certFor(host)
		},
	})
	s.tunnel.Store(tc, r.Host)
	s.tlsLn.push(tc)
}

// chanListener hands the tunnels' TLS connections to the TLS server.
type chanListener struct {
	addr net.Addr
	ch   chan net.Conn
	once sync.Once
	done chan struct{}
}

func newChanListener(addr net.Addr) *chanListener {
	return &chanListener{addr: addr, ch: make(chan net.Conn), done: make(chan struct{})}
}

func (l *chanListener) push(c net.Conn) {
	select {
	case l.ch <- c:
	case <-l.done:
		c.Close()
	}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return l.addr }
