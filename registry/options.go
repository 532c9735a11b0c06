package registry

import (
	"net/http"
	"sync/atomic"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/strata-build/packer-plugin-strata/layer"
)

// Options say how to reach registries.
type Options struct {
	// Insecure lists registries ("host:port") reached over plain http;
	// every other one over https with its certificate verified.
	Insecure []string
	// Keychain finds credentials; nil is the Docker config's
	// (DefaultKeychain: DOCKER_CONFIG or ~/.docker/config.json, with its
	// credential helpers).
	Keychain authn.Keychain
	// Compression of the layer blobs a push makes ("gzip", the default, or
	// "zstd"); a pull takes what the registry has.
	Compression string
	// Jobs is how many blobs move at once (4 when 0).
	Jobs int
	// Transport is the HTTP transport (http.DefaultTransport when nil).
	Transport http.RoundTripper
}

// compression is the layer compression a push makes.
func (o Options) compression() string {
	if o.Compression != "" {
		return o.Compression
	}
	return layer.Gzip
}

func (o Options) jobs() int {
	if o.Jobs > 0 {
		return o.Jobs
	}
	return 4
}

// counter counts the blob bytes an operation sent to a registry.
type counter struct {
	next  http.RoundTripper
	sent  atomic.Int64
	blobs atomic.Int64
}

func (c *counter) RoundTrip(req *http.Request) (*http.Response, error) {
	if (req.Method == http.MethodPatch || req.Method == http.MethodPut) && isUpload(req.URL.Path) && req.ContentLength != 0 {
		if req.Method == http.MethodPatch || req.ContentLength > 0 {
			c.blobs.Add(1)
		}
		if req.ContentLength > 0 {
			c.sent.Add(req.ContentLength)
		}
	}
	return c.next.RoundTrip(req)
}

func isUpload(p string) bool {
	const marker = "/blobs/uploads/"
	for i := 0; i+len(marker) <= len(p); i++ {
		if p[i:i+len(marker)] == marker {
			return true
		}
	}
	return false
}
