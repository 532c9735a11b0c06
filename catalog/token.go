package catalog

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Token is a bearer token of the catalog's HTTP server (strata serve). Only
// the sha256 of its secret is stored; the secret is shown once, when it is
// created.
type Token struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
	// Scopes are what the token may do: ACTION:IMAGE, where ACTION is
	// read, promote, rollback, revoke, restore, evidence or *, and IMAGE
	// an image name or *.
	Scopes    []string   `json:"scopes"`
	Created   time.Time  `json:"created"`
	Actor     string     `json:"actor,omitempty"` // who created it
	Revoked   bool       `json:"revoked"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
	// Hash is the sha256 of the secret in hex; never shown.
	Hash string `json:"-"`
}

// Token actions: what a scope names.
const (
	ScopeRead     = "read"
	ScopePromote  = "promote"
	ScopeRollback = "rollback"
	ScopeRevoke   = "revoke"
	ScopeRestore  = "restore"
	ScopeEvidence = "evidence"
)

var scopeActions = map[string]bool{ScopeRead: true, ScopePromote: true, ScopeRollback: true, ScopeRevoke: true, ScopeRestore: true, ScopeEvidence: true, "*": true}

// TokenPrefix starts every secret, so that secret scanners and people know
// one when they see it.
const TokenPrefix = "strata_"

// ErrBadToken is a secret no active token has.
var ErrBadToken = errors.New("unknown or revoked token")

// CheckScope checks one ACTION:IMAGE scope.
func CheckScope(s string) error {
	action, image, ok := strings.Cut(s, ":")
	if !ok || !scopeActions[action] {
		return invalid("scope %q: write ACTION:IMAGE with ACTION one of read, promote, rollback, revoke, restore, evidence or *", s)
	}
	if image != "*" {
		if err := ValidName("image", image); err != nil {
			return invalid("scope %q: the image is a name or *", s)
		}
	}
	return nil
}

// Allows says whether the token may do action on image.
func (t *Token) Allows(action, image string) bool {
	if t == nil || t.Revoked {
		return false
	}
	for _, s := range t.Scopes {
		a, im, _ := strings.Cut(s, ":")
		if (a == action || a == "*") && (im == image || im == "*") {
			return true
		}
	}
	return false
}

// HashToken is the stored form of a secret.
func HashToken(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

// CreateToken makes a token with scopes and returns its secret, which is
// not stored and cannot be shown again. A name is unique among the tokens
// not revoked.
func (c *Catalog) CreateToken(ctx context.Context, name string, scopes []string, actor string) (string, *Token, error) {
	if err := ValidName("token name", name); err != nil {
		return "", nil, err
	}
	if len(scopes) == 0 {
		return "", nil, invalid("token %s: give it at least one --scope ACTION:IMAGE", name)
	}
	for _, s := range scopes {
		if err := CheckScope(s); err != nil {
			return "", nil, err
		}
	}
	if err := checkText("actor", actor); err != nil {
		return "", nil, err
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", nil, err
	}
	secret := TokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	t := &Token{Name: name, Scopes: append([]string{}, scopes...), Created: c.Now().UTC(), Actor: actor, Hash: HashToken(secret)}
	err := c.store.Update(ctx, func(tx Tx) error {
		all, err := tx.Tokens()
		if err != nil {
			return err
		}
		for _, o := range all {
			if o.Name == name && !o.Revoked {
				return fmt.Errorf("%w: token %s exists; revoke it first or choose another name", ErrConflict, name)
			}
		}
		return tx.InsertToken(t)
	})
	if err != nil {
		return "", nil, err
	}
	return secret, t, nil
}

// RevokeToken revokes the active token called name.
func (c *Catalog) RevokeToken(ctx context.Context, name string) (*Token, error) {
	if err := ValidName("token name", name); err != nil {
		return nil, err
	}
	var out *Token
	err := c.store.Update(ctx, func(tx Tx) error {
		all, err := tx.Tokens()
		if err != nil {
			return err
		}
		for i := range all {
			if all[i].Name == name && !all[i].Revoked {
				at := c.Now().UTC()
				if err := tx.RevokeToken(all[i].ID, at.UnixNano()); err != nil {
					return err
				}
				out = &all[i]
				out.Revoked, out.RevokedAt = true, &at
				return nil
			}
		}
		return notFound("no active token %s", name)
	})
	return out, err
}

// Tokens lists every token, revoked ones too, oldest first.
func (c *Catalog) Tokens(ctx context.Context) ([]Token, error) {
	var out []Token
	err := c.store.View(ctx, func(tx Tx) (err error) {
		out, err = tx.Tokens()
		return err
	})
	return out, err
}

// Authenticate finds the active token whose secret this is.
func (c *Catalog) Authenticate(ctx context.Context, secret string) (*Token, error) {
	if !strings.HasPrefix(secret, TokenPrefix) {
		return nil, ErrBadToken
	}
	var t *Token
	err := c.store.View(ctx, func(tx Tx) (err error) {
		t, err = tx.TokenByHash(HashToken(secret))
		return err
	})
	if errors.Is(err, ErrNotFound) || (err == nil && t.Revoked) {
		return nil, ErrBadToken
	}
	return t, err
}
