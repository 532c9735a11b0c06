package catalog

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync"

	"github.com/strata-build/packer-plugin-strata/internal/storeroot"
)

// Opener opens a store from its URL. With create it makes the catalog when
// there is none and says so (created); without, it creates nothing (no
// file, no directory, no schema) and answers ErrNoCatalog.
type Opener func(u *url.URL, create bool) (s Store, created bool, err error)

// ErrNoCatalog is a catalog URL where no catalog is. OpenExisting's error
// for it is also an ErrNotFound.
var ErrNoCatalog = errors.New("no catalog")

// missingCatalog names the catalog that is not there, and what to do.
type missingCatalog struct{ url string }

func (e missingCatalog) Error() string {
	return "catalog " + e.url + " does not exist; " + NoCatalogAdvice
}

func (e missingCatalog) Is(target error) bool { return target == ErrNoCatalog || target == ErrNotFound }

var (
	backendsMu sync.Mutex
	backends   = map[string]Opener{}
)

// RegisterBackend makes a URL scheme openable; backends call it from init.
func RegisterBackend(scheme string, open Opener) {
	backendsMu.Lock()
	defer backendsMu.Unlock()
	backends[scheme] = open
}

// DefaultURL is $STRATA_CATALOG, else the SQLite file in the store root
// ($STRATA_HOME, else /var/lib/strata).
func DefaultURL() string { return URLFor("") }

// URLFor is the catalog a store uses: $STRATA_CATALOG, else the SQLite
// file in the store root (store, else $STRATA_HOME, else /var/lib/strata).
func URLFor(store string) string {
	if u := os.Getenv("STRATA_CATALOG"); u != "" {
		return u
	}
	root, err := storeroot.Resolve(store)
	if err != nil {
		root = storeroot.Default
	}
	return storeroot.Layout{Root: root}.CatalogURL()
}

// CheckURL checks that rawURL looks like a catalog URL, without opening it.
func CheckURL(rawURL string) error {
	_, err := parseURL(rawURL)
	return err
}

func parseURL(rawURL string) (*url.URL, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme == "" {
		return nil, invalid("catalog URL %q: use sqlite:///path/catalog.db or postgres://user@host/db", rawURL)
	}
	return u, nil
}

// Open opens the catalog a URL names (sqlite:///path/catalog.db or
// postgres://user@host/db), creating it when there is none; Created then
// says so. Only what writes (register, the post-processor) opens this way.
func Open(rawURL string) (*Catalog, error) { return open(rawURL, true) }

// OpenExisting opens the catalog a URL names and creates nothing: where no
// catalog is, it fails with ErrNoCatalog and a message that names the URL
// (a typo in a URL or in STRATA_HOME is not an empty catalog).
func OpenExisting(rawURL string) (*Catalog, error) { return open(rawURL, false) }

func open(rawURL string, create bool) (*Catalog, error) {
	u, err := parseURL(rawURL)
	if err != nil {
		return nil, err
	}
	backendsMu.Lock()
	open, ok := backends[u.Scheme]
	if !ok && u.Scheme == "postgresql" {
		open, ok = backends["postgres"]
	}
	var known []string
	for k := range backends {
		known = append(known, k)
	}
	backendsMu.Unlock()
	if !ok {
		sort.Strings(known)
		return nil, invalid("catalog URL %q: unknown scheme %q (known: %s)", rawURL, u.Scheme, strings.Join(known, ", "))
	}
	s, created, err := open(u, create)
	if errors.Is(err, ErrNoCatalog) {
		return nil, missingCatalog{redact(u)}
	}
	if err != nil {
		return nil, fmt.Errorf("opening catalog %s: %w", redact(u), err)
	}
	c := New(s)
	c.Created = created
	return c, nil
}

// NoCatalogAdvice is what to do about a catalog that does not exist.
const NoCatalogAdvice = "build and register an image first (post-processor \"strata-catalog\" or strata register), or check --catalog, STRATA_CATALOG and STRATA_HOME (or the catalog and store_dir options)"

// RedactURL is a catalog URL without its password, for messages.
func RedactURL(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "(a catalog URL that does not parse)"
	}
	return redact(u)
}

func redact(u *url.URL) string {
	c := *u
	if _, has := c.User.Password(); has {
		c.User = url.UserPassword(c.User.Username(), "xxxxx")
	}
	return c.String()
}
