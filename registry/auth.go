package registry

import (
	"context"
	"fmt"
	"net/http"
	"slices"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// ParseReference parses "host[:port]/repo[:tag|@digest]"; a registry that
// Insecure lists is reached over plain http.
func (o Options) ParseReference(ref string) (name.Reference, error) {
	r, err := name.ParseReference(ref, name.StrictValidation)
	if err != nil {
		// A bare repository means its "latest" tag, as docker says.
		if r2, err2 := name.ParseReference(ref); err2 == nil && r2.Context().RegistryStr() != name.DefaultRegistry {
			r, err = r2, nil
		}
	}
	if err != nil {
		return nil, fmt.Errorf("registry reference %q: %w (write host:port/repository:tag)", ref, err)
	}
	if slices.Contains(o.Insecure, r.Context().RegistryStr()) {
		return name.ParseReference(r.String(), name.Insecure)
	}
	return r, nil
}

// remoteOptions are the options of every remote call: credentials from the
// keychain (never logged), the context, the transport.
func (o Options) remoteOptions(ctx context.Context, t http.RoundTripper) []remote.Option {
	kc := o.Keychain
	if kc == nil {
		kc = authn.DefaultKeychain
	}
	if t == nil {
		t = o.transport()
	}
	return []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(kc),
		remote.WithJobs(o.jobs()),
		remote.WithTransport(t),
		remote.WithUserAgent("strata"),
	}
}

// authTransport pings reg once and returns a transport that
// authenticates every request to it (credentials from the keychain) for
// scopes; remote calls given it use it as it is, without a ping each.
func (o Options) authTransport(ctx context.Context, reg name.Registry, scopes []string) (http.RoundTripper, error) {
	return o.authTransportOver(ctx, o.transport(), reg, scopes)
}

func (o Options) authTransportOver(ctx context.Context, t http.RoundTripper, reg name.Registry, scopes []string) (http.RoundTripper, error) {
	kc := o.Keychain
	if kc == nil {
		kc = authn.DefaultKeychain
	}
	auth, err := authn.Resolve(ctx, kc, reg)
	if err != nil {
		return nil, err
	}
	return transport.NewWithContext(ctx, reg, auth, transport.NewUserAgent(t, "strata"), scopes)
}

func (o Options) transport() http.RoundTripper {
	t := o.Transport
	if t == nil {
		t = remote.DefaultTransport
	}
	if len(o.Insecure) > 0 {
		t = plainOnly{next: t, hosts: o.Insecure}
	}
	return t
}

// plainOnly refuses https to the registries reached over plain http,
// without dialling: go-containerregistry's ping tries https first even
// for them, and that attempt would cost a connection per operation.
type plainOnly struct {
	next  http.RoundTripper
	hosts []string
}

func (p plainOnly) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme == "https" && slices.Contains(p.hosts, req.URL.Host) {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, fmt.Errorf("%s is an insecure registry, reached over plain http only", req.URL.Host)
	}
	return p.next.RoundTrip(req)
}
