package registry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The push protocol, with as few requests as the distribution spec
// allows (each one costs a round trip and, on a registry with htpasswd,
// a password check; a child push is mostly its requests, not its bytes):
//
//   - one ping per registry (the auth handshake), one authenticated
//     transport (keep-alive) for every request of the push;
//   - each blob: POST /blobs/uploads/?mount=D&from=R. R is the repository
//     the blob is expected in (the parent's, for the parent's layers) or
//     the target repository itself, which makes the POST the existence
//     check too: 201 means the blob is there (mounted or already linked),
//     202 opens the upload session that the same blob's bytes then go to
//     in one PUT ?digest=D (the registry checks the digest). A 202 on a
//     cross-repository mount is followed by a HEAD in the target, so a
//     blob it has is not sent again. A registry that refuses mount
//     parameters gets the plain sequence: HEAD, POST, PUT;
//   - the blobs of an image at once (up to Options.Jobs), then its
//     manifest, PUT without a HEAD first (writing the same manifest twice
//     is harmless); further tags in the repository are one PUT each.

// pusher writes to the repositories of one registry over one
// authenticated transport.
type pusher struct {
	client *http.Client
	reg    name.Registry
	jobs   int
	// mounts is set once the registry has answered a mount with 201: it
	// honours mount parameters.
	mounts atomic.Bool
}

// newPusher pings reg once and sets up its auth for pushing to repos and
// pulling from mountFrom (which may be empty).
func newPusher(ctx context.Context, opt Options, t http.RoundTripper, reg name.Registry, repos []name.Repository, mountFrom []name.Repository) (*pusher, error) {
	var scopes []string
	for _, r := range repos {
		scopes = append(scopes, r.Scope(transport.PushScope))
	}
	for _, r := range mountFrom {
		scopes = append(scopes, r.Scope(transport.PullScope))
	}
	rt, err := opt.authTransportOver(ctx, t, reg, scopes)
	if err != nil {
		return nil, err
	}
	return &pusher{client: &http.Client{Transport: rt}, reg: reg, jobs: opt.jobs()}, nil
}

func (p *pusher) url(repo name.Repository, path string) string {
	u := url.URL{Scheme: p.reg.Scheme(), Host: p.reg.RegistryStr(), Path: "/v2/" + repo.RepositoryStr() + path}
	return u.String()
}

// do sends a request and checks its status against want; the body is
// drained and closed either way, so the connection is reused.
func (p *pusher) do(req *http.Request, want ...int) (*http.Response, error) {
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
	}()
	if err := transport.CheckError(resp, want...); err != nil {
		return resp, err
	}
	return resp, nil
}

// pushBlob is one blob to push.
type pushBlob struct {
	digest v1.Hash
	size   int64
	open   func() (io.ReadCloser, error)
	// from is the repository the blob is likely in already (a parent's),
	// or empty.
	from *name.Repository
}

// blob makes sure repo has b, sending its bytes only when it lacks it.
// settled, when not nil, closes once the mounts of this push from other
// repositories are answered (see mounts).
func (p *pusher) blob(ctx context.Context, repo name.Repository, b pushBlob, settled <-chan struct{}) error {
	from, cross := repo, false
	if b.from != nil && b.from.RegistryStr() == repo.RegistryStr() && b.from.RepositoryStr() != repo.RepositoryStr() {
		from, cross = *b.from, true
	}
	q := url.Values{"mount": {b.digest.String()}, "from": {from.RepositoryStr()}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url(repo, "/blobs/uploads/")+"?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	resp, err := p.do(req, http.StatusCreated, http.StatusAccepted)
	if err != nil && ctx.Err() == nil && resp != nil && resp.StatusCode != http.StatusUnauthorized {
		// A registry that refuses the mount parameters: the plain way.
		return p.blobPlain(ctx, repo, b)
	}
	if err != nil {
		return err
	}
	if resp.StatusCode == http.StatusCreated {
		p.mounts.Store(true)
		return nil
	}
	loc, err := location(resp)
	if err != nil {
		return err
	}
	// Not mounted. From another repository: the blob may be in this one
	// all the same. From this one: it is not here, if the registry
	// mounts at all (it mounted another blob in this push); a registry
	// that ignores mount parameters opens a session for everything, so
	// there a HEAD asks.
	if !cross && settled != nil {
		select {
		case <-settled:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if cross || !p.mounts.Load() {
		if has, err := p.has(ctx, repo, b.digest); err != nil || has {
			return err
		}
	}
	return p.put(ctx, loc, b)
}

// blobPlain is the sequence every registry takes: HEAD, POST, PUT.
func (p *pusher) blobPlain(ctx context.Context, repo name.Repository, b pushBlob) error {
	if has, err := p.has(ctx, repo, b.digest); err != nil || has {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url(repo, "/blobs/uploads/"), nil)
	if err != nil {
		return err
	}
	resp, err := p.do(req, http.StatusAccepted)
	if err != nil {
		return err
	}
	loc, err := location(resp)
	if err != nil {
		return err
	}
	return p.put(ctx, loc, b)
}

// has says whether repo has the blob d.
func (p *pusher) has(ctx context.Context, repo name.Repository, d v1.Hash) (bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, p.url(repo, "/blobs/"+d.String()), nil)
	if err != nil {
		return false, err
	}
	resp, err := p.do(req, http.StatusOK, http.StatusNotFound)
	if err != nil {
		return false, err
	}
	return resp.StatusCode == http.StatusOK, nil
}

// put sends the whole blob to the upload session at loc in one request,
// which the registry completes only if its bytes hash to the digest.
func (p *pusher) put(ctx context.Context, loc string, b pushBlob) error {
	u, err := url.Parse(loc)
	if err != nil {
		return err
	}
	q := u.Query()
	q.Set("digest", b.digest.String())
	u.RawQuery = q.Encode()
	body, err := b.open()
	if err != nil {
		return err
	}
	defer body.Close()
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, u.String(), body)
	if err != nil {
		return err
	}
	req.ContentLength = b.size
	req.GetBody = nil
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := p.do(req, http.StatusCreated)
	if err != nil {
		return fmt.Errorf("blob %s: %w", b.digest, err)
	}
	if got := resp.Header.Get("Docker-Content-Digest"); got != "" && got != b.digest.String() {
		return fmt.Errorf("blob %s: the registry stored it as %s", b.digest, got)
	}
	return nil
}

// location is the upload session's URL a 202 names, resolved against the
// request. A session on another host is taken only for a public one (a
// registry's storage redirect), never a loopback or private address the
// registry is not on: a hostile registry must not aim the blob at an
// internal service.
func location(resp *http.Response) (string, error) {
	loc := resp.Header.Get("Location")
	if loc == "" {
		return "", errors.New("the registry opened an upload without a Location")
	}
	u, err := url.Parse(loc)
	if err != nil {
		return "", err
	}
	r := resp.Request.URL.ResolveReference(u)
	if h := r.Hostname(); h != resp.Request.URL.Hostname() {
		if ip := net.ParseIP(h); ip != nil && (ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsUnspecified()) {
			return "", fmt.Errorf("the registry sent the upload to %s, a private address", h)
		}
	}
	return r.String(), nil
}

// manifest puts a manifest under tag or digest id in repo.
func (p *pusher) manifest(ctx context.Context, repo name.Repository, id string, man pushManifest) error {
	d := man.d
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, p.url(repo, "/manifests/"+id), bytes.NewReader(man.raw))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", string(man.mt))
	resp, err := p.do(req, http.StatusOK, http.StatusCreated, http.StatusAccepted)
	if err != nil {
		return err
	}
	if got := resp.Header.Get("Docker-Content-Digest"); got != "" && got != d.String() {
		return fmt.Errorf("the registry stored the manifest as %s, not %s", got, d)
	}
	return nil
}

// pushManifest is an image's manifest as pushed.
type pushManifest struct {
	raw []byte
	d   v1.Hash
	mt  types.MediaType
}

func manifestOf(img v1.Image) (pushManifest, error) {
	raw, err := img.RawManifest()
	if err != nil {
		return pushManifest{}, err
	}
	d, err := img.Digest()
	if err != nil {
		return pushManifest{}, err
	}
	mt, err := img.MediaType()
	if mt == "" {
		mt = types.OCIManifestSchema1
	}
	return pushManifest{raw, d, mt}, err
}

// image pushes img's blobs (at once) and its manifest man under id.
func (p *pusher) image(ctx context.Context, repo name.Repository, id string, img v1.Image, man pushManifest, parentLayers int, from *name.Repository) error {
	m, err := v1.ParseManifest(bytes.NewReader(man.raw))
	if err != nil {
		return err
	}
	cfg, err := img.RawConfigFile()
	if err != nil {
		return err
	}
	blobs := []pushBlob{{digest: m.Config.Digest, size: int64(len(cfg)),
		open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(cfg)), nil }}}
	for i, desc := range m.Layers {
		l, err := img.LayerByDigest(desc.Digest)
		if err != nil {
			return err
		}
		b := pushBlob{digest: desc.Digest, size: desc.Size, open: l.Compressed}
		if i < parentLayers {
			b.from = from
		}
		blobs = append(blobs, b)
	}
	// All at once: the parent's layers are mounts, one request each
	// (not held to Jobs: no bytes move unless one is missing), whose 201
	// also says the registry honours mounts; the image's own blobs, up
	// to Jobs at a time, wait for that answer only when their own mount
	// POST opened a session (see blob).
	var inParent, own []pushBlob
	for _, b := range blobs {
		if b.from != nil {
			inParent = append(inParent, b)
		} else {
			own = append(own, b)
		}
	}
	settled := make(chan struct{})
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, 2)
	go func() {
		err := p.blobs(ctx, repo, inParent, len(inParent)+1, nil)
		close(settled)
		errs <- err
	}()
	go func() { errs <- p.blobs(ctx, repo, own, p.jobs, settled) }()
	for range 2 {
		if err := <-errs; err != nil {
			cancel()
			return err
		}
	}
	return p.manifest(ctx, repo, id, man)
}

// blobs pushes bs at once (up to jobs); the first failure stops the rest.
func (p *pusher) blobs(ctx context.Context, repo name.Repository, bs []pushBlob, jobs int, settled <-chan struct{}) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		sem      = make(chan struct{}, jobs)
	)
	for _, b := range bs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			if err := p.blob(ctx, repo, b, settled); err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
					cancel()
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return firstErr
}

// pushImage writes img to every reference in refs (all parsed): blobs and
// manifest to the first of each repository, a tag PUT to the others. The
// first parentLayers layers are looked for in from first (a mount).
func pushImage(ctx context.Context, opt Options, t http.RoundTripper, refs []name.Reference, img v1.Image, parentLayers int, from *name.Repository) (failed int, err error) {
	byReg := map[string]*pusher{}
	done := map[string]bool{}
	man, err := manifestOf(img)
	if err != nil {
		return 0, err
	}
	for i, ref := range refs {
		repo := ref.Context()
		p := byReg[repo.RegistryStr()]
		if p == nil {
			var repos []name.Repository
			for _, r := range refs {
				if r.Context().RegistryStr() == repo.RegistryStr() {
					repos = append(repos, r.Context())
				}
			}
			var mf []name.Repository
			if from != nil && from.RegistryStr() == repo.RegistryStr() {
				mf = append(mf, *from)
			}
			if p, err = newPusher(ctx, opt, t, repo.Registry, repos, mf); err != nil {
				return i, err
			}
			byReg[repo.RegistryStr()] = p
		}
		if done[repo.String()] {
			err = p.manifest(ctx, repo, ref.Identifier(), man)
		} else {
			err = p.image(ctx, repo, ref.Identifier(), img, man, parentLayers, from)
		}
		if err != nil {
			return i, err
		}
		done[repo.String()] = true
	}
	return 0, nil
}
