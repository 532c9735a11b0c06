package server

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/strata-build/packer-plugin-strata/catalog"
)

// bearer is the secret of an Authorization: Bearer header ("" without).
func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// authorize finds the token of secret and checks it may do action on
// image: 401 without a valid token, 403 when its scopes do not allow it.
// Messages name the token, never its secret.
func (s *Server) authorize(r *http.Request, secret, action, image string) (*catalog.Token, int, string) {
	if secret == "" {
		return nil, http.StatusUnauthorized, fmt.Sprintf("this needs a bearer token with the %s:%s scope (strata token create)", action, image)
	}
	tok, err := s.cat.Authenticate(r.Context(), secret)
	if errors.Is(err, catalog.ErrBadToken) {
		return nil, http.StatusUnauthorized, "unknown or revoked token"
	}
	if err != nil {
		if s.opt.Log != nil {
			s.opt.Log.Printf("checking a token: %v", err)
		}
		return nil, http.StatusInternalServerError, "internal error checking the token"
	}
	if !tok.Allows(action, image) {
		return tok, http.StatusForbidden, fmt.Sprintf("token %s has no %s:%s scope (it has %s)", tok.Name, action, image, strings.Join(tok.Scopes, " "))
	}
	return tok, 0, ""
}

// The web pages' session: the token's secret in an HttpOnly, SameSite=Strict
// cookie set by the sign-in form (or a token typed into a form), and a
// double-submit CSRF value: a random cookie every form repeats in a hidden
// field, bound to the server's key.
const (
	sessionCookie = "strata_token"
	csrfCookie    = "strata_csrf"
)

// csrfValue is the form value that goes with the browser's CSRF cookie.
func (s *Server) csrfValue(cookie string) string {
	m := hmac.New(sha256.New, s.csrfKey[:])
	m.Write([]byte(cookie))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// csrfCookieValue returns the browser's CSRF cookie, setting a new one
// when it has none.
func (s *Server) csrfCookieValue(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(csrfCookie); err == nil && len(c.Value) >= 20 {
		return c.Value
	}
	var b [24]byte
	rand.Read(b[:])
	v := base64.RawURLEncoding.EncodeToString(b[:])
	http.SetCookie(w, &http.Cookie{Name: csrfCookie, Value: v, Path: "/", HttpOnly: true, Secure: s.opt.Secure, SameSite: http.SameSiteStrictMode})
	return v
}

// checkCSRF checks a form post: its csrf field matches the browser's
// cookie, and the Origin (when the browser sends one) is this host.
func (s *Server) checkCSRF(r *http.Request) error {
	if o := r.Header.Get("Origin"); o != "" && o != "null" {
		host := o[strings.Index(o, "://")+3:]
		if host != r.Host {
			return errors.New("the form was posted from another site")
		}
	}
	c, err := r.Cookie(csrfCookie)
	if err != nil {
		return errors.New("no CSRF cookie: reload the page and try again")
	}
	if !hmac.Equal([]byte(r.PostFormValue("csrf")), []byte(s.csrfValue(c.Value))) {
		return errors.New("the form's CSRF value does not match: reload the page and try again")
	}
	return nil
}

// sessionSecret is the signed-in token's secret: a token field of the form
// wins over the cookie.
func sessionSecret(r *http.Request) string {
	if r.Method == http.MethodPost {
		if t := strings.TrimSpace(r.PostFormValue("token")); t != "" {
			return t
		}
	}
	if c, err := r.Cookie(sessionCookie); err == nil {
		return c.Value
	}
	return ""
}

// sessionToken is the signed-in token, nil when none (or revoked since).
func (s *Server) sessionToken(r *http.Request) *catalog.Token {
	secret := sessionSecret(r)
	if secret == "" {
		return nil
	}
	tok, err := s.cat.Authenticate(r.Context(), secret)
	if err != nil {
		return nil
	}
	return tok
}
