package server

import (
	"bytes"
	"embed"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/strata-build/packer-plugin-strata/catalog"
)

//go:embed templates/*.html templates/*.css templates/*.js
var templateFS embed.FS

// pageSet holds one template per page, each with the shared layout.
type pageSet struct {
	pages map[string]*template.Template
	css   []byte
	js    []byte
}

var funcs = template.FuncMap{
	"ts":    func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05Z") },
	"short": shortDigest,
	"join":  strings.Join,
	"path":  url.PathEscape,
	"allows": func(t *catalog.Token, action, image string) bool {
		return t.Allows(action, image)
	},
	"rev": func(h []catalog.ChannelEntry) []catalog.ChannelEntry {
		out := make([]catalog.ChannelEntry, len(h))
		for i, e := range h {
			out[len(h)-1-i] = e
		}
		return out
	},
}

func shortDigest(d string) string {
	h := strings.TrimPrefix(d, "sha256:")
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

func mustPages() *pageSet {
	ps := &pageSet{pages: map[string]*template.Template{}}
	for _, p := range []string{"images", "image", "version", "lineage", "signin", "error"} {
		ps.pages[p] = template.Must(template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+p+".html"))
	}
	ps.css, _ = templateFS.ReadFile("templates/style.css")
	ps.js, _ = templateFS.ReadFile("templates/confirm.js")
	return ps
}

// page is what every page's template gets.
type page struct {
	Title string
	Token *catalog.Token
	CSRF  string
	Data  any
}

func (s *Server) pageRoutes() {
	s.handle("GET /{$}", s.pageHandler(s.imagesPage))
	s.handle("GET /images/{name}", s.pageHandler(s.imagePage))
	s.handle("GET /images/{name}/versions/{version}", s.pageHandler(s.versionPage))
	s.handle("GET /images/{name}/versions/{version}/lineage", s.pageHandler(s.lineagePage))
	s.handle("GET /signin", s.pageHandler(func(w http.ResponseWriter, r *http.Request, p *page) (string, error) {
		p.Title = "Sign in"
		p.Data = r.URL.Query().Get("next")
		return "signin", nil
	}))
	s.handle("POST /signin", http.HandlerFunc(s.signIn))
	s.handle("POST /signout", http.HandlerFunc(s.signOut))
	s.handle("POST /images/{name}/channels/{channel}/{action}", http.HandlerFunc(s.moveForm))
	s.handle("GET /confirm.js", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript")
		w.Write(s.pages.js)
	}))
	s.handle("GET /style.css", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/css")
		w.Header().Set("Cache-Control", "max-age=3600")
		w.Write(s.pages.css)
	}))
}

// pageHandler renders what fn prepares; an error becomes an error page
// with the status the API would answer.
func (s *Server) pageHandler(fn func(w http.ResponseWriter, r *http.Request, p *page) (string, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, n := range []string{"name"} {
			if v := r.PathValue(n); v != "" {
				if err := catalog.ValidName("image", v); err != nil {
					s.errorPage(w, r, http.StatusBadRequest, err.Error())
					return
				}
			}
		}
		p := &page{Token: s.sessionToken(r), CSRF: s.csrfValue(s.csrfCookieValue(w, r))}
		if s.opt.ReadTokenRequired && r.URL.Path != "/signin" {
			image := r.PathValue("name")
			if image == "" {
				image = "*"
			}
			if p.Token == nil {
				http.Redirect(w, r, "/signin?next="+url.QueryEscape(r.URL.Path), http.StatusSeeOther)
				return
			}
			if !p.Token.Allows(catalog.ScopeRead, image) {
				s.errorPage(w, r, http.StatusForbidden, "token "+p.Token.Name+" has no read:"+image+" scope")
				return
			}
		}
		name, err := fn(w, r, p)
		if err != nil {
			code, msg := errorStatus(err)
			s.errorPage(w, r, code, msg)
			return
		}
		s.render(w, http.StatusOK, name, p)
	})
}

func (s *Server) render(w http.ResponseWriter, code int, name string, p *page) {
	var b bytes.Buffer
	if err := s.pages.pages[name].Execute(&b, p); err != nil {
		if s.opt.Log != nil {
			s.opt.Log.Printf("rendering %s: %v", name, err)
		}
		http.Error(w, "internal error rendering the page", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; script-src 'self'")
	w.Header().Set("X-Frame-Options", "DENY")
	w.WriteHeader(code)
	w.Write(b.Bytes())
}

func (s *Server) errorPage(w http.ResponseWriter, r *http.Request, code int, msg string) {
	s.render(w, code, "error", &page{Title: http.StatusText(code), Token: s.sessionToken(r), Data: struct {
		Code int
		Msg  string
	}{code, msg}})
}

type imageRow struct {
	catalog.Image
	Channels []catalog.Channel
}

func (s *Server) imagesPage(w http.ResponseWriter, r *http.Request, p *page) (string, error) {
	imgs, err := s.cat.Images(r.Context())
	if err != nil {
		return "", err
	}
	rows := make([]imageRow, len(imgs))
	for i, im := range imgs {
		chs, err := s.cat.Channels(r.Context(), im.Name)
		if err != nil {
			return "", err
		}
		rows[i] = imageRow{im, chs}
	}
	p.Title, p.Data = "Images", rows
	return "images", nil
}

type channelView struct {
	catalog.Channel
	History []catalog.ChannelEntry
	Policy  *catalog.Policy
}

type imageView struct {
	Name     string
	Channels []channelView
	Versions []VersionRow
	Done     string
}

func (s *Server) imagePage(w http.ResponseWriter, r *http.Request, p *page) (string, error) {
	name := r.PathValue("name")
	rows, err := s.versionRows(r.Context(), name)
	if err != nil {
		return "", err
	}
	chs, err := s.cat.Channels(r.Context(), name)
	if err != nil {
		return "", err
	}
	pols, err := s.cat.Policies(r.Context(), name)
	if err != nil {
		return "", err
	}
	v := imageView{Name: name, Versions: rows}
	for i := len(v.Versions)/2 - 1; i >= 0; i-- { // newest first
		j := len(v.Versions) - 1 - i
		v.Versions[i], v.Versions[j] = v.Versions[j], v.Versions[i]
	}
	for _, ch := range chs {
		h, err := s.cat.History(r.Context(), name, ch.Name)
		if err != nil {
			return "", err
		}
		cv := channelView{Channel: ch, History: h}
		for i := range pols {
			if pols[i].Channel == ch.Name {
				cv.Policy = &pols[i]
			}
		}
		v.Channels = append(v.Channels, cv)
	}
	if d := r.URL.Query().Get("done"); d == "promote" || d == "rollback" {
		v.Done = d + " of " + r.URL.Query().Get("channel")
		if catalog.ValidName("channel", r.URL.Query().Get("channel")) != nil {
			v.Done = ""
		}
	}
	p.Title, p.Data = name, v
	return "image", nil
}

type versionView struct {
	*Shown
	// DiffFrom is the version a channel held before this one (DiffChannel),
	// or else the one registered before it; Diff is
	// what changed from it.
	DiffFrom, DiffChannel string
	Diff                  *catalog.Diff
	Stale                 *catalog.Staleness
}

func (s *Server) versionPage(w http.ResponseWriter, r *http.Request, p *page) (string, error) {
	name, version := r.PathValue("name"), r.PathValue("version")
	sh, err := s.shown(r.Context(), name, version)
	if err != nil {
		return "", err
	}
	v := versionView{Shown: sh}
	// The channel's previous version: the newest history entry, of any
	// channel, that moved a channel to this version from another.
	chs, err := s.cat.Channels(r.Context(), name)
	if err != nil {
		return "", err
	}
	var best *catalog.ChannelEntry
	for _, ch := range chs {
		h, err := s.cat.History(r.Context(), name, ch.Name)
		if err != nil {
			return "", err
		}
		for i := range h {
			if h[i].Version == version && h[i].Previous != "" && h[i].Previous != version && (best == nil || h[i].ID > best.ID) {
				best = &h[i]
			}
		}
	}
	if best != nil {
		v.DiffFrom, v.DiffChannel = best.Previous, best.Channel
	} else {
		// Never moved a channel: against the version registered before it.
		vs, err := s.cat.Versions(r.Context(), name)
		if err != nil {
			return "", err
		}
		for i := 1; i < len(vs); i++ {
			if vs[i].Version == version {
				v.DiffFrom = vs[i-1].Version
			}
		}
	}
	if v.DiffFrom != "" {
		if v.Diff, err = s.cat.Diff(r.Context(), name, v.DiffFrom, name, version); err != nil && !errors.Is(err, catalog.ErrNotFound) {
			return "", err
		}
	}
	if v.Stale, err = s.cat.Stale(r.Context(), name, version); err != nil {
		return "", err
	}
	sort.Strings(v.Channels)
	p.Title, p.Data = name+"@"+version, v
	return "version", nil
}

func (s *Server) lineagePage(w http.ResponseWriter, r *http.Request, p *page) (string, error) {
	name, version := r.PathValue("name"), r.PathValue("version")
	l, err := s.lineage(r.Context(), name, version)
	if err != nil {
		return "", err
	}
	p.Title, p.Data = "lineage of "+name+"@"+version, struct {
		*LineageView
		Graph *graph
	}{l, layoutLineage(l)}
	return "lineage", nil
}

// safeNext keeps a redirect after sign-in on this site.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return "/"
	}
	return next
}

func (s *Server) signIn(w http.ResponseWriter, r *http.Request) {
	if err := s.checkCSRF(r); err != nil {
		s.errorPage(w, r, http.StatusForbidden, err.Error())
		return
	}
	secret := strings.TrimSpace(r.PostFormValue("token"))
	if _, err := s.cat.Authenticate(r.Context(), secret); err != nil {
		s.errorPage(w, r, http.StatusUnauthorized, "unknown or revoked token")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: secret, Path: "/", HttpOnly: true, Secure: s.opt.Secure, SameSite: http.SameSiteStrictMode, MaxAge: 12 * 3600})
	http.Redirect(w, r, safeNext(r.PostFormValue("next")), http.StatusSeeOther)
}

func (s *Server) signOut(w http.ResponseWriter, r *http.Request) {
	if err := s.checkCSRF(r); err != nil {
		s.errorPage(w, r, http.StatusForbidden, err.Error())
		return
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", HttpOnly: true, Secure: s.opt.Secure, SameSite: http.SameSiteStrictMode, MaxAge: -1})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// moveForm is the promote and rollback buttons: CSRF-checked, confirmed,
// with a token from the sign-in cookie or the form, recorded as the actor.
func (s *Server) moveForm(w http.ResponseWriter, r *http.Request) {
	name, channel, action := r.PathValue("name"), r.PathValue("channel"), r.PathValue("action")
	if action != catalog.ScopePromote && action != catalog.ScopeRollback {
		s.errorPage(w, r, http.StatusNotFound, "no such action: "+action)
		return
	}
	for _, n := range [][2]string{{"image", name}, {"channel", channel}} {
		if err := catalog.ValidName(n[0], n[1]); err != nil {
			s.errorPage(w, r, http.StatusBadRequest, err.Error())
			return
		}
	}
	if err := s.checkCSRF(r); err != nil {
		s.errorPage(w, r, http.StatusForbidden, err.Error())
		return
	}
	secret := sessionSecret(r)
	if secret == "" {
		s.errorPage(w, r, http.StatusForbidden, "sign in with a token (or give one in the form) that has the "+action+":"+name+" scope")
		return
	}
	tok, code, msg := s.authorize(r, secret, action, name)
	if code != 0 {
		if code == http.StatusUnauthorized {
			code = http.StatusForbidden
		}
		s.errorPage(w, r, code, msg)
		return
	}
	if r.PostFormValue("confirm") != "yes" {
		s.errorPage(w, r, http.StatusBadRequest, "tick the confirmation box to "+action+" "+channel)
		return
	}
	reason := r.PostFormValue("reason")
	var err error
	if action == catalog.ScopePromote {
		_, _, err = s.cat.Promote(r.Context(), name, channel, r.PostFormValue("version"), catalog.MoveOptions{Actor: tok.Name, Reason: reason})
	} else {
		_, err = s.rollback(r.Context(), name, channel, tok.Name, &RollbackRequest{Reason: reason, To: r.PostFormValue("to")})
	}
	if err != nil {
		code, msg := errorStatus(err)
		s.errorPage(w, r, code, msg)
		return
	}
	http.Redirect(w, r, "/images/"+url.PathEscape(name)+"?done="+action+"&channel="+url.QueryEscape(channel), http.StatusSeeOther)
}
