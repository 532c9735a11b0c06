package catalogtest

import (
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/strata-build/packer-plugin-strata/catalog"
)

func testTokens(t *testing.T, c *catalog.Catalog) {
	secret, tok, err := c.CreateToken(ctx, "ci", []string{"promote:base-os", "evidence:*"}, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(secret, catalog.TokenPrefix) || len(secret) < 40 || tok.ID == 0 {
		t.Fatalf("secret %q token %+v", secret, tok)
	}
	list, err := c.Tokens(ctx)
	if err != nil || len(list) != 1 || list[0].Name != "ci" || list[0].Actor != "alice" || len(list[0].Scopes) != 2 {
		t.Fatalf("tokens %+v %v", list, err)
	}
	// Only the hash is stored: no column holds the secret.
	if list[0].Hash == "" || strings.Contains(list[0].Hash, secret[len(catalog.TokenPrefix):]) || list[0].Hash != catalog.HashToken(secret) {
		t.Fatalf("stored hash %q", list[0].Hash)
	}
	got, err := c.Authenticate(ctx, secret)
	if err != nil || got.Name != "ci" {
		t.Fatalf("authenticate: %+v %v", got, err)
	}
	for _, tc := range []struct {
		action, image string
		want          bool
	}{
		{"promote", "base-os", true}, {"promote", "app", false}, {"rollback", "base-os", false},
		{"evidence", "app", true}, {"evidence", "base-os", true}, {"read", "base-os", false},
	} {
		if got.Allows(tc.action, tc.image) != tc.want {
			t.Errorf("Allows(%s, %s) = %v", tc.action, tc.image, !tc.want)
		}
	}
	for _, bad := range []string{"", "strata_nope", secret + "x", "x" + secret} {
		if _, err := c.Authenticate(ctx, bad); !errors.Is(err, catalog.ErrBadToken) {
			t.Errorf("authenticate %q: %v", bad, err)
		}
	}
	// One active token per name; bad names and scopes are refused.
	if _, _, err := c.CreateToken(ctx, "ci", []string{"read:*"}, "bob"); !errors.Is(err, catalog.ErrConflict) {
		t.Fatalf("duplicate name: %v", err)
	}
	for _, scopes := range [][]string{nil, {"promote"}, {"deploy:base-os"}, {"promote:Base OS"}} {
		if _, _, err := c.CreateToken(ctx, "x", scopes, "bob"); !errors.Is(err, catalog.ErrInvalid) {
			t.Errorf("scopes %q: %v", scopes, err)
		}
	}
	if _, _, err := c.CreateToken(ctx, "Bad Name", []string{"read:*"}, "bob"); !errors.Is(err, catalog.ErrInvalid) {
		t.Errorf("bad name: %v", err)
	}
	// Revoked: no longer authenticates, the name is free again.
	r, err := c.RevokeToken(ctx, "ci")
	if err != nil || !r.Revoked || r.RevokedAt == nil {
		t.Fatalf("revoke: %+v %v", r, err)
	}
	if _, err := c.Authenticate(ctx, secret); !errors.Is(err, catalog.ErrBadToken) {
		t.Fatalf("revoked token authenticates: %v", err)
	}
	if _, err := c.RevokeToken(ctx, "ci"); !errors.Is(err, catalog.ErrNotFound) {
		t.Fatalf("revoking twice: %v", err)
	}
	secret2, _, err := c.CreateToken(ctx, "ci", []string{"*:*"}, "bob")
	if err != nil || secret2 == secret {
		t.Fatalf("recreate: %v", err)
	}
	list, _ = c.Tokens(ctx)
	if len(list) != 2 || !list[0].Revoked || list[1].Revoked {
		t.Fatalf("tokens after revoke and recreate: %+v", list)
	}
	if got, err := c.Authenticate(ctx, secret2); err != nil || !got.Allows("rollback", "anything") {
		t.Fatalf("admin token: %+v %v", got, err)
	}
}

// testTokenNamesConcurrent: racing creators of one name leave one active
// token.
func testTokenNamesConcurrent(t *testing.T, c *catalog.Catalog) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, _, err := c.CreateToken(ctx, "fleet", []string{"read:*"}, "x"); err == nil {
				mu.Lock()
				ok++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	list, err := c.Tokens(ctx)
	if err != nil || ok != 1 || len(list) != 1 {
		t.Fatalf("%d creates succeeded, %d tokens (%v)", ok, len(list), err)
	}
}
