package main

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestCLITokenAndServe: strata token prints a secret once and stores only
// its hash; strata serve refuses a remote listen without TLS, serves the
// channel, takes a promotion with the token (recorded as its name) and
// refuses the token once revoked.
func TestCLITokenAndServe(t *testing.T) {
	db := filepath.Join(t.TempDir(), "catalog.db")
	c := cli{t, "sqlite://" + db}
	c.ok("register", "web", "--from-output", fakeOutput(t, "one", "apt\t2.6.1\tamd64\n"), "--promote", "production")
	c.ok("register", "web", "--from-output", fakeOutput(t, "two", "apt\t2.6.2\tamd64\n"))

	c.fails(2, "--scope", "token", "create", "ci")
	c.fails(2, "ACTION:IMAGE", "token", "create", "ci", "--scope", "deploy:web")
	var created struct {
		Name   string `json:"name"`
		Secret string `json:"secret"`
	}
	if err := json.Unmarshal([]byte(c.ok("token", "create", "ci", "--scope", "promote:web", "--json")), &created); err != nil || !strings.HasPrefix(created.Secret, "strata_") {
		t.Fatalf("token create: %+v %v", created, err)
	}
	list := c.ok("token", "list", "--json")
	raw, _ := os.ReadFile(db)
	wal, _ := os.ReadFile(db + "-wal")
	for what, s := range map[string]string{"token list": list, "the catalog file": string(raw) + string(wal)} {
		if strings.Contains(s, created.Secret) || strings.Contains(s, created.Secret[7:]) {
			t.Fatalf("%s holds the secret", what)
		}
	}
	if !strings.Contains(c.ok("token", "list"), "promote:web") {
		t.Fatal("token list lacks the scope")
	}
	c.fails(2, "TLS", "serve", "--listen", "0.0.0.0:0")
	c.fails(2, "--tls-key", "serve", "--tls-cert", "x.pem")

	cmd := exec.Command(binary, "--catalog", c.url, "serve", "--listen", "127.0.0.1:0")
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("strata serve after SIGTERM: %v", err)
			}
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			t.Error("strata serve did not stop on SIGTERM")
		}
	}()
	sc := bufio.NewScanner(stderr)
	base := ""
	for sc.Scan() {
		if _, addr, ok := strings.Cut(sc.Text(), "listening on "); ok {
			base = addr
			break
		}
	}
	if base == "" {
		t.Fatal("strata serve said no address")
	}
	var logs strings.Builder
	go io.Copy(&logs, stderr)
	get := func(path string) (int, string) {
		res, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	post := func(path, token, body string) (int, string) {
		req, _ := http.NewRequest("POST", base+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	if code, body := get("/v1/images/web/channels/production"); code != 200 || !strings.Contains(body, `"version": "1.0.0"`) {
		t.Fatalf("channel: %d %s", code, body)
	}
	if code, body := post("/v1/images/web/channels/production/promote", created.Secret, `{"version":"1.0.1","reason":"over http"}`); code != 200 {
		t.Fatalf("promote: %d %s", code, body)
	}
	if h := c.ok("history", "web", "production"); !strings.Contains(h, "ci") || !strings.Contains(h, "over http") {
		t.Fatalf("history: %s", h)
	}
	c.ok("token", "revoke", "ci")
	if code, body := post("/v1/images/web/channels/production/rollback", created.Secret, `{}`); code != 401 {
		t.Fatalf("a revoked token: %d %s", code, body)
	}
	c.fails(3, "no active token", "token", "revoke", "ci")
	if strings.Contains(logs.String(), created.Secret[7:]) {
		t.Fatal("the server's log holds the secret")
	}
}

// TestCLIServeTLS: with a certificate the server speaks HTTPS (and may
// then listen beyond loopback); a bad key pair is a usage error.
func TestCLIServeTLS(t *testing.T) {
	dir := t.TempDir()
	c := cli{t, "sqlite://" + filepath.Join(dir, "catalog.db")}
	c.ok("register", "web", "--from-output", fakeOutput(t, "one", "apt\t2.6.1\tamd64\n"), "--promote", "production")
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	c.fails(2, "--tls-cert/--tls-key", "serve", "--tls-cert", keyFile, "--tls-key", certFile)

	cmd := exec.Command(binary, "--catalog", c.url, "serve", "--listen", "127.0.0.1:0", "--tls-cert", certFile, "--tls-key", keyFile)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }()
	sc := bufio.NewScanner(stderr)
	base := ""
	for sc.Scan() {
		if _, addr, ok := strings.Cut(sc.Text(), "listening on "); ok {
			base = addr
			break
		}
	}
	go io.Copy(io.Discard, stderr)
	if !strings.HasPrefix(base, "https://") {
		t.Fatalf("listening on %q", base)
	}
	pool := x509.NewCertPool()
	pool.AddCert(tlsMust(x509.ParseCertificate(der)))
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	res, err := client.Get(base + "/v1/images/web/channels/production")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 || res.TLS == nil {
		t.Fatalf("over TLS: %d", res.StatusCode)
	}
	if _, err := http.Get(strings.Replace(base, "https://", "http://", 1) + "/v1/images"); err == nil {
		// Plain HTTP to a TLS port gets a TLS alert or a 400 from net/http, never the catalog.
		res, _ := http.Get(strings.Replace(base, "https://", "http://", 1) + "/v1/images")
		if res != nil && res.StatusCode == 200 {
			t.Fatal("plain HTTP served the catalog")
		}
	}
}

func tlsMust[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
