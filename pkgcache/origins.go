package pkgcache

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"
)

// origins is the one allow-list of a build's cache: the archives of the
// build's own apt sources. A request is served only when it asks for a
// file under one of them that apt asks for (dists/… or pool/…); CONNECT
// only to the host and port of an https source; and a connection to a
// loopback, link-local or private address only to a host a source (or the
// upstream proxy) names. Everything else is refused before any connection
// is opened.
type origins struct {
	mu      sync.Mutex
	archive []archive
	named   map[string]bool // host:port a source names: dialed wherever it resolves
	// more reads further sources (the image's own) when a request names an
	// archive the list lacks.
	more func() []string
}

// archive is a source's URI, split: scheme, host:port (port explicit), and
// its path ending in "/".
type archive struct {
	scheme, hostport, path string
}

func newOrigins(sources []string, proxies []string) *origins {
	o := &origins{named: map[string]bool{}}
	o.add(sources)
	for _, p := range proxies {
		if u, err := url.Parse(p); err == nil && u.Host != "" {
			o.named[hostPort(u.Scheme, u.Host)] = true
		}
	}
	return o
}

// add puts source URIs on the list (others than http and https are
// skipped: apt's other methods do not go through a proxy).
func (o *origins) add(sources []string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, s := range sources {
		u, err := url.Parse(strings.TrimSpace(s))
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			continue
		}
		a := archive{scheme: u.Scheme, hostport: hostPort(u.Scheme, u.Host), path: strings.TrimRight(u.Path, "/") + "/"}
		known := false
		for _, b := range o.archive {
			known = known || b == a
		}
		if !known {
			o.archive = append(o.archive, a)
		}
		o.named[a.hostport] = true
	}
}

// hostPort is host:port with the port explicit and the host in lower case.
func hostPort(scheme, host string) string {
	host = strings.ToLower(host)
	if _, _, err := net.SplitHostPort(host); err == nil {
		return host
	}
	port := "80"
	if scheme == "https" {
		port = "443"
	}
	return net.JoinHostPort(strings.Trim(host, "[]"), port)
}

// canonicalURL is the cache's name of a file: scheme://host[:port]/path,
// the port left out when it is the scheme's default (as apt writes it).
func canonicalURL(scheme, host, p string) string {
	hp := hostPort(scheme, host)
	h, port, _ := net.SplitHostPort(hp)
	if (scheme == "http" && port == "80") || (scheme == "https" && port == "443") {
		if strings.Contains(h, ":") {
			h = "[" + h + "]"
		}
		return scheme + "://" + h + p
	}
	return scheme + "://" + hp + p
}

// allows says why scheme://host/p may not be fetched, or nil.
func (o *origins) allows(scheme, host, p string) error {
	if o.match(scheme, host, p) {
		return nil
	}
	if o.refresh() && o.match(scheme, host, p) {
		return nil
	}
	return fmt.Errorf("%s is not a file apt asks for (dists/… or pool/…) under any apt source of this build (the bootstrap mirror, the build host's apt sources, the image's /etc/apt/sources.list*): refused", canonicalURL(scheme, host, p))
}

func (o *origins) match(scheme, host, p string) bool {
	hp := hostPort(scheme, host)
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, a := range o.archive {
		if a.scheme != scheme || a.hostport != hp || !strings.HasPrefix(p, a.path) {
			continue
		}
		rel := p[len(a.path):]
		if cleanRelative(rel) && (strings.HasPrefix(rel, "dists/") || strings.HasPrefix(rel, "pool/")) {
			return true
		}
	}
	return false
}

// tunnels says whether CONNECT to host (host:port) may be answered.
func (o *origins) tunnels(host string) bool {
	ok := func() bool {
		hp := hostPort("https", host)
		o.mu.Lock()
		defer o.mu.Unlock()
		for _, a := range o.archive {
			if a.scheme == "https" && a.hostport == hp {
				return true
			}
		}
		return false
	}
	return ok() || (o.refresh() && ok())
}

func (o *origins) refresh() bool {
	if o.more == nil {
		return false
	}
	o.add(o.more())
	return true
}

func (o *origins) isNamed(hostport string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.named[strings.ToLower(hostport)]
}

// dial connects to addr (host:port). A host no source names may only be
// at public addresses: the name is resolved once, every address checked,
// and the connection made to a checked address (no second lookup).
func (o *origins) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	if o.isNamed(addr) {
		return d.DialContext(ctx, network, addr)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, err
	}
	for _, ip := range ips {
		if !publicAddr(ip) {
			return nil, fmt.Errorf("refusing to connect to %s (%s): a loopback, link-local or private address that no apt source of this build names", host, ip)
		}
	}
	var last error
	for _, ip := range ips {
		c, err := d.DialContext(ctx, network, net.JoinHostPort(ip.String(), port))
		if err == nil {
			return c, nil
		}
		last = err
	}
	if last == nil {
		last = fmt.Errorf("%s has no address", host)
	}
	return nil, last
}

var sharedAddressSpace = netip.MustParsePrefix("100.64.0.0/10")

// publicAddr: not loopback, link-local, private (RFC 1918, fc00::/7,
// 100.64/10), unspecified or multicast.
func publicAddr(ip netip.Addr) bool {
	ip = ip.Unmap()
	return ip.IsValid() && !ip.IsLoopback() && !ip.IsPrivate() && !ip.IsLinkLocalUnicast() && !ip.IsLinkLocalMulticast() &&
		!ip.IsInterfaceLocalMulticast() && !ip.IsMulticast() && !ip.IsUnspecified() && !sharedAddressSpace.Contains(ip)
}

// environmentProxies are the proxies the environment names, which the
// cache may be told to fetch through.
func environmentProxies() []string {
	var out []string
	for _, k := range []string{"http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY"} {
		if v := os.Getenv(k); v != "" {
			if !strings.Contains(v, "://") {
				v = "http://" + v
			}
			out = append(out, v)
		}
	}
	return out
}
