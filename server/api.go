package server

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"time"

	"github.com/strata-build/packer-plugin-strata/catalog"
)

// route is one API endpoint: the mux pattern, the OpenAPI description and
// the handler come from here, so they cannot disagree.
type route struct {
	Method, Path, Summary string
	// Action is the token scope action a write needs (promote, …); reads
	// need "read" only when the server requires read tokens.
	Action string
	Query  []param
	// In is the request body's type (nil for none), Out the response's.
	In, Out reflect.Type
	// ETag: the response carries a strong ETag and honours If-None-Match.
	ETag bool
	run  func(c *call) (any, error)
}

// param is a query parameter.
type param struct {
	Name, Description string
	Required          bool
}

// call is one API request.
type call struct {
	ctx   context.Context
	r     *http.Request
	token *catalog.Token
	body  []byte
}

func (c *call) path(name string) string { return c.r.PathValue(name) }

// read makes a GET route answering T.
func read[T any](path, summary string, query []param, fn func(c *call) (T, error)) route {
	return route{Method: http.MethodGet, Path: path, Summary: summary, Query: query, Out: reflect.TypeFor[T](),
		run: func(c *call) (any, error) { return fn(c) }}
}

// write makes a POST route taking In and answering Out, for a token with action.
func write[In, Out any](path, summary, action string, fn func(c *call, in *In) (Out, error)) route {
	return route{Method: http.MethodPost, Path: path, Summary: summary, Action: action, In: reflect.TypeFor[In](), Out: reflect.TypeFor[Out](),
		run: func(c *call) (any, error) {
			in := new(In)
			dec := json.NewDecoder(strings.NewReader(string(c.body)))
			dec.DisallowUnknownFields()
			if len(strings.TrimSpace(string(c.body))) > 0 {
				if err := dec.Decode(in); err != nil {
					return nil, badRequest("request body: %v", err)
				}
				if dec.More() {
					return nil, badRequest("request body: more than one JSON value")
				}
			}
			return fn(c, in)
		}}
}

// The API's own types (the rest are the catalog's, as the CLI's --json
// prints them).

// VersionRow is a version in a list, with the channels that hold it.
type VersionRow struct {
	*catalog.Version
	Channels []string `json:"channels,omitempty"`
}

// Shown is one version with everything about it (strata show --json).
type Shown struct {
	*catalog.Version
	Channels []string `json:"channels"`
}

// ChannelHead is what a fleet polls: where a channel points now.
type ChannelHead struct {
	Image   string    `json:"image"`
	Channel string    `json:"channel"`
	Version string    `json:"version"`
	ImageID string    `json:"image_id"`
	Layers  []string  `json:"layers,omitempty"`
	Since   time.Time `json:"since"`
	Revoked bool      `json:"revoked"`
	// Entry is the channel history entry that set it.
	Entry int64 `json:"entry"`
}

// LineageView is a version's lineage, with what in it is out of date.
type LineageView struct {
	catalog.Lineage
	// Stale maps image@version, of the version and its descendants, to why
	// it sits on a replaced ancestor (absent when current).
	Stale map[string]*catalog.Staleness `json:"stale"`
}

// PromoteRequest moves a channel to a version (or to what From holds).
type PromoteRequest struct {
	Version  string `json:"version,omitempty"`
	From     string `json:"from,omitempty"`
	Reason   string `json:"reason,omitempty"`
	Override bool   `json:"override,omitempty"`
}

// MoveResult is a promotion's history entry.
type MoveResult struct {
	*catalog.ChannelEntry
	Changed bool `json:"changed"`
}

// RollbackRequest rolls a channel back (to To, or the newest earlier one).
type RollbackRequest struct {
	To     string `json:"to,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// RollbackResult is strata rollback --json.
type RollbackResult struct {
	*catalog.ChannelEntry
	Skipped       []catalog.RollbackTarget `json:"skipped"`
	LacksEvidence []string                 `json:"lacks_evidence"`
}

// RevokeRequest revokes or restores a version.
type RevokeRequest struct {
	Reason      string `json:"reason,omitempty"`
	Descendants bool   `json:"descendants,omitempty"`
}

// RevokeResult is strata revoke --json.
type RevokeResult struct {
	Changed      []*catalog.Version `json:"changed"`
	HeldChannels []catalog.Channel  `json:"channels_holding_revoked"`
}

// EvidenceRequest records a test result.
type EvidenceRequest struct {
	Kind         string         `json:"kind"`
	Passed       bool           `json:"passed"`
	Counts       catalog.Counts `json:"counts"`
	Report       string         `json:"report,omitempty"`
	ReportSHA256 string         `json:"report_sha256,omitempty"`
	BootTimeMS   int64          `json:"boot_time_ms,omitempty"`
}

// Error is every error's body.
type Error struct {
	Error string `json:"error"`
}

type httpError struct {
	code int
	msg  string
}

func (e *httpError) Error() string { return e.msg }

func badRequest(format string, a ...any) error {
	return &httpError{http.StatusBadRequest, fmt.Sprintf(format, a...)}
}

const (
	pImage   = "/v1/images/{name}"
	pVersion = pImage + "/versions/{version}"
	pChannel = pImage + "/channels/{channel}"
)

func (s *Server) apiRoutes() []route {
	c := s.cat
	return []route{
		read("/v1/images", "List images", nil, func(k *call) ([]catalog.Image, error) {
			return c.Images(k.ctx)
		}),
		read(pImage+"/versions", "List an image's versions, oldest first, with the channels holding them", nil, func(k *call) ([]VersionRow, error) {
			return s.versionRows(k.ctx, k.path("name"))
		}),
		read(pVersion, "Show one version: packages, layers, artifacts, labels, evidence, channels", nil, func(k *call) (*Shown, error) {
			return s.shown(k.ctx, k.path("name"), k.path("version"))
		}),
		read(pVersion+"/evidence", "List a version's evidence, oldest first", nil, func(k *call) ([]catalog.Evidence, error) {
			return c.EvidenceOf(k.ctx, k.path("name"), k.path("version"))
		}),
		read(pVersion+"/lineage", "A version's ancestors and descendants, marking those on a replaced ancestor", nil, func(k *call) (*LineageView, error) {
			return s.lineage(k.ctx, k.path("name"), k.path("version"))
		}),
		read(pImage+"/channels", "List an image's channels and where they point", nil, func(k *call) ([]catalog.Channel, error) {
			return c.Channels(k.ctx, k.path("name"))
		}),
		withETag(read(pChannel, "Where a channel points now: what a fleet polls (strong ETag; If-None-Match answers 304)", nil, func(k *call) (*ChannelHead, error) {
			return s.channelHead(k.ctx, k.path("name"), k.path("channel"))
		})),
		read(pChannel+"/history", "A channel's assignment history, oldest first", nil, func(k *call) ([]catalog.ChannelEntry, error) {
			return c.History(k.ctx, k.path("name"), k.path("channel"))
		}),
		read(pImage+"/diff", "What changed from one version to another", []param{
			{"from", "the older version (VERSION, or NAME@VERSION of another image)", true},
			{"to", "the newer version (VERSION, or NAME@VERSION of another image)", true},
		}, func(k *call) (*catalog.Diff, error) {
			return s.diff(k)
		}),
		read(pImage+"/policies", "The policies in force on the image's channels", nil, func(k *call) ([]catalog.Policy, error) {
			return c.Policies(k.ctx, k.path("name"))
		}),
		read("/v1/out-of-date", "Channel heads built on an ancestor no channel holds any more", []param{
			{"image", "only this image's channel heads", false},
		}, func(k *call) ([]catalog.OutOfDate, error) {
			return c.OutOfDate(k.ctx, k.r.URL.Query().Get("image"))
		}),
		write(pChannel+"/promote", "Point a channel at a version (needs promote:IMAGE)", catalog.ScopePromote, func(k *call, in *PromoteRequest) (*MoveResult, error) {
			if in.Version == "" && in.From == "" {
				return nil, badRequest("promote needs version, or from (a channel)")
			}
			e, changed, err := c.Promote(k.ctx, k.path("name"), k.path("channel"), in.Version, catalog.MoveOptions{Actor: k.token.Name, Reason: in.Reason, From: in.From, Override: in.Override})
			if err != nil {
				return nil, err
			}
			return &MoveResult{e, changed}, nil
		}),
		write(pChannel+"/rollback", "Move a channel back (needs rollback:IMAGE)", catalog.ScopeRollback, func(k *call, in *RollbackRequest) (*RollbackResult, error) {
			return s.rollback(k.ctx, k.path("name"), k.path("channel"), k.token.Name, in)
		}),
		write(pVersion+"/revoke", "Revoke a version, optionally its descendants (needs revoke:IMAGE for each image)", catalog.ScopeRevoke, func(k *call, in *RevokeRequest) (*RevokeResult, error) {
			return s.setRevoked(k, true, in)
		}),
		write(pVersion+"/restore", "Undo a revocation (needs restore:IMAGE for each image)", catalog.ScopeRestore, func(k *call, in *RevokeRequest) (*RevokeResult, error) {
			return s.setRevoked(k, false, in)
		}),
		write(pVersion+"/evidence", "Record a test result on a version (needs evidence:IMAGE)", catalog.ScopeEvidence, func(k *call, in *EvidenceRequest) (*catalog.Evidence, error) {
			return c.AddEvidence(k.ctx, k.path("name"), k.path("version"), catalog.Evidence{
				Kind: in.Kind, Passed: in.Passed, Counts: in.Counts, Report: in.Report, ReportSHA256: in.ReportSHA256,
				BootTimeMS: in.BootTimeMS, Source: "strata-serve", Actor: k.token.Name,
			})
		}),
	}
}

func withETag(r route) route { r.ETag = true; return r }

// serveRoute checks names and the token, runs the route and writes JSON.
func (s *Server) serveRoute(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, p := range []struct{ kind, name string }{{"image", "name"}, {"channel", "channel"}} {
			if v := r.PathValue(p.name); v != "" {
				if err := catalog.ValidName(p.kind, v); err != nil {
					writeError(w, r, http.StatusBadRequest, err.Error())
					return
				}
			}
		}
		if v := r.PathValue("version"); v != "" {
			if err := catalog.CheckText(&catalog.Version{Version: v}); err != nil {
				writeError(w, r, http.StatusBadRequest, err.Error())
				return
			}
		}
		for _, q := range rt.Query {
			if q.Required && r.URL.Query().Get(q.Name) == "" {
				writeError(w, r, http.StatusBadRequest, fmt.Sprintf("query parameter %s is required: %s", q.Name, q.Description))
				return
			}
		}
		k := &call{ctx: r.Context(), r: r}
		image := r.PathValue("name")
		if q := r.URL.Query().Get("image"); image == "" && q != "" {
			if err := catalog.ValidName("image", q); err != nil {
				writeError(w, r, http.StatusBadRequest, err.Error())
				return
			}
			image = q
		}
		if image == "" {
			image = "*"
		}
		action := rt.Action
		if action == "" && s.opt.ReadTokenRequired {
			action = catalog.ScopeRead
		}
		if action != "" {
			tok, code, msg := s.authorize(r, bearer(r), action, image)
			if code != 0 {
				if code == http.StatusUnauthorized {
					w.Header().Set("WWW-Authenticate", `Bearer realm="strata"`)
				}
				writeError(w, r, code, msg)
				return
			}
			k.token = tok
		}
		if rt.In != nil {
			b, err := io.ReadAll(r.Body)
			if err != nil {
				var tooBig *http.MaxBytesError
				if errors.As(err, &tooBig) {
					writeError(w, r, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body over %d bytes", tooBig.Limit))
					return
				}
				writeError(w, r, http.StatusBadRequest, "reading the request body: "+err.Error())
				return
			}
			k.body = b
		}
		out, err := rt.run(k)
		if err != nil {
			code, msg := errorStatus(err)
			if code == http.StatusInternalServerError && s.opt.Log != nil {
				s.opt.Log.Printf("%s %s: %v", r.Method, sanitizePath(r.URL.Path), err)
			}
			writeError(w, r, code, msg)
			return
		}
		body, err := marshalJSON(out)
		if err != nil {
			writeError(w, r, http.StatusInternalServerError, "encoding the answer")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		if rt.ETag {
			sum := sha256.Sum256(body)
			tag := `"` + base64.RawURLEncoding.EncodeToString(sum[:18]) + `"`
			w.Header().Set("ETag", tag)
			w.Header().Set("Cache-Control", "no-cache")
			if etagMatch(r.Header.Get("If-None-Match"), tag) {
				w.WriteHeader(http.StatusNotModified)
				return
			}
		}
		w.Write(body)
	})
}

// marshalJSON encodes v as the CLI does: an empty list is [], not null.
func marshalJSON(v any) ([]byte, error) {
	if rv := reflect.ValueOf(v); rv.Kind() == reflect.Slice && rv.IsNil() {
		v = []struct{}{}
	}
	b, err := json.MarshalIndent(v, "", "  ")
	return append(b, '\n'), err
}

// etagMatch applies If-None-Match (a list of tags, or *) with the weak
// comparison RFC 9110 asks for.
func etagMatch(header, tag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == "*" || t == tag {
			return true
		}
	}
	return false
}

// errorStatus maps a catalog error to an HTTP status and message.
func errorStatus(err error) (int, string) {
	var he *httpError
	switch {
	case errors.As(err, &he):
		return he.code, he.msg
	case errors.Is(err, catalog.ErrInvalid):
		return http.StatusBadRequest, err.Error()
	case errors.Is(err, catalog.ErrNotFound):
		return http.StatusNotFound, err.Error()
	case errors.Is(err, catalog.ErrConflict), errors.Is(err, catalog.ErrRevoked), errors.Is(err, catalog.ErrNoRollback), errors.Is(err, catalog.ErrPolicy):
		return http.StatusConflict, err.Error()
	}
	return http.StatusInternalServerError, "internal error (the server's log has it)"
}

func writeError(w http.ResponseWriter, r *http.Request, code int, msg string) {
	b, _ := json.Marshal(Error{msg})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}

// The queries behind the routes (the pages use them too).

func (s *Server) versionRows(ctx context.Context, image string) ([]VersionRow, error) {
	vs, err := s.cat.Versions(ctx, image)
	if err != nil {
		return nil, err
	}
	chs, err := s.cat.Channels(ctx, image)
	if err != nil {
		return nil, err
	}
	held := map[string][]string{}
	for _, ch := range chs {
		held[ch.Version] = append(held[ch.Version], ch.Name)
	}
	rows := make([]VersionRow, len(vs))
	for i, v := range vs {
		rows[i] = VersionRow{v, held[v.Version]}
	}
	return rows, nil
}

func (s *Server) shown(ctx context.Context, image, version string) (*Shown, error) {
	v, err := s.cat.Get(ctx, image, version)
	if err != nil {
		return nil, err
	}
	chs, err := s.cat.Channels(ctx, image)
	if err != nil {
		return nil, err
	}
	on := []string{}
	for _, ch := range chs {
		if ch.Version == version {
			on = append(on, ch.Name)
		}
	}
	return &Shown{v, on}, nil
}

func (s *Server) channelHead(ctx context.Context, image, channel string) (*ChannelHead, error) {
	h, err := s.cat.History(ctx, image, channel)
	if err != nil {
		return nil, err
	}
	if len(h) == 0 {
		return nil, fmt.Errorf("%w: channel %s of %s has never been assigned", catalog.ErrNotFound, channel, image)
	}
	last := h[len(h)-1]
	v, err := s.cat.Get(ctx, image, last.Version)
	if err != nil {
		return nil, err
	}
	return &ChannelHead{Image: image, Channel: channel, Version: v.Version, ImageID: v.ImageID, Layers: v.Layers,
		Since: last.Time, Revoked: v.Revoked, Entry: last.ID}, nil
}

func (s *Server) lineage(ctx context.Context, image, version string) (*LineageView, error) {
	l, err := s.cat.Lineage(ctx, image, version)
	if err != nil {
		return nil, err
	}
	stale, err := s.cat.StaleOf(ctx, append([]*catalog.Version{l.Version}, l.Descendants...))
	if err != nil {
		return nil, err
	}
	out := &LineageView{Lineage: *l, Stale: stale}
	if out.Ancestors == nil {
		out.Ancestors = []*catalog.Version{}
	}
	if out.Descendants == nil {
		out.Descendants = []*catalog.Version{}
	}
	return out, nil
}

func (s *Server) diff(k *call) (*catalog.Diff, error) {
	image := k.path("name")
	ref := func(q string) (string, string, error) {
		v := k.r.URL.Query().Get(q)
		if name, ver, ok := strings.Cut(v, "@"); ok {
			if err := catalog.ValidName("image", name); err != nil {
				return "", "", badRequest("%s=%q: %v", q, v, err)
			}
			return name, ver, nil
		}
		return image, v, nil
	}
	ia, va, err := ref("from")
	if err != nil {
		return nil, err
	}
	ib, vb, err := ref("to")
	if err != nil {
		return nil, err
	}
	return s.cat.Diff(k.ctx, ia, va, ib, vb)
}

func (s *Server) rollback(ctx context.Context, image, channel, actor string, in *RollbackRequest) (*RollbackResult, error) {
	e, skipped, err := s.cat.Rollback(ctx, image, channel, catalog.MoveOptions{Actor: actor, Reason: in.Reason, To: in.To})
	if err != nil {
		return nil, err
	}
	lacks, err := s.cat.MissingEvidence(ctx, image, channel, e.Version)
	if err != nil {
		return nil, err
	}
	if skipped == nil {
		skipped = []catalog.RollbackTarget{}
	}
	return &RollbackResult{e, skipped, append([]string{}, lacks...)}, nil
}

func (s *Server) setRevoked(k *call, revoke bool, in *RevokeRequest) (*RevokeResult, error) {
	image, version := k.path("name"), k.path("version")
	action := catalog.ScopeRestore
	if revoke {
		action = catalog.ScopeRevoke
	}
	if in.Descendants {
		// Descendants can be in other images: the token needs each.
		l, err := s.cat.Lineage(k.ctx, image, version)
		if err != nil {
			return nil, err
		}
		for _, d := range l.Descendants {
			if !k.token.Allows(action, d.Image) {
				return nil, &httpError{http.StatusForbidden, fmt.Sprintf("token %s has no %s:%s scope for descendant %s", k.token.Name, action, d.Image, d.Ref())}
			}
		}
	}
	opt := catalog.RevokeOptions{Reason: in.Reason, Descendants: in.Descendants, Actor: k.token.Name}
	var changed []*catalog.Version
	var err error
	if revoke {
		changed, err = s.cat.Revoke(k.ctx, image, version, opt)
	} else {
		changed, err = s.cat.Restore(k.ctx, image, version, opt)
	}
	if err != nil {
		return nil, err
	}
	held := []catalog.Channel{}
	if revoke {
		for _, v := range changed {
			chs, err := s.cat.Channels(k.ctx, v.Image)
			if err != nil {
				return nil, err
			}
			for _, ch := range chs {
				if ch.Version == v.Version {
					held = append(held, ch)
				}
			}
		}
	}
	if changed == nil {
		changed = []*catalog.Version{}
	}
	return &RevokeResult{changed, held}, nil
}
