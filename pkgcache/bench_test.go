package pkgcache

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// BenchmarkWarmBuild is one build's use of a warm cache: a new server
// (build), the InRelease revalidated (304), the index and 20 .debs served
// from disk. It prices the checks a build pays once (the signature of the
// cached InRelease checked again for this build) and per request (the
// credentials, the allow-list, the digest check).
func BenchmarkWarmBuild(b *testing.B) {
	debs := map[string][]byte{}
	var names []string
	for i := 0; i < 20; i++ {
		n := fmt.Sprintf("p%d_1_all.deb", i)
		debs[n] = bytes.Repeat([]byte{byte(i)}, 10000)
		names = append(names, n)
	}
	r := newRepo(b, false, debs)
	dir := b.TempDir()
	if _, err := apt(b, start(b, dir, r, Options{}), r.srv.URL, names...); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s := start(b, dir, r, Options{})
		if _, err := apt(b, s, r.srv.URL, names...); err != nil {
			b.Fatal(err)
		}
		if st := s.Stats(); st.Misses != 0 {
			b.Fatalf("a warm build fetched: %+v", st)
		}
		s.Close()
	}
}

// BenchmarkRequestChecks prices what every request pays now: the
// credentials (constant time), the allow-list and the digest check.
func BenchmarkRequestChecks(b *testing.B) {
	o := newOrigins([]string{"http://mirror.invalid/debian", "https://other.invalid/repo"}, nil)
	s := &Server{auth: []byte("Basic c3RyYXRhOnNlY3JldA==")}
	req := httptest.NewRequest(http.MethodGet, "http://mirror.invalid/debian/pool/main/a/a_1_all.deb", nil)
	req.Header.Set("Proxy-Authorization", "Basic c3RyYXRhOnNlY3JldA==")
	digest := strings.Repeat("ab", 32)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if !s.authorized(req) || o.allows("http", "mirror.invalid", "/debian/pool/main/a/a_1_all.deb") != nil || CheckDigest(digest) != nil {
			b.Fatal("refused")
		}
	}
}
