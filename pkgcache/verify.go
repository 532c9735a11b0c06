package pkgcache

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/strata-build/packer-plugin-strata/internal/hostexec"
)

// Signature outcomes.
const (
	sigGood    = "good"
	sigUnknown = "unknown key" // signed by a key none of the keyrings has
	sigBad     = "bad"
	sigNone    = "unsigned"
)

// HostKeyrings are the build host's apt keyrings in binary form, which
// gpgv reads; never the archive's removed keys (debian-archive-removed-
// keys.gpg and the like), which apt no longer trusts either.
func HostKeyrings(root string) []string {
	var out []string
	for _, pattern := range []string{"usr/share/keyrings/*.gpg", "etc/apt/trusted.gpg", "etc/apt/trusted.gpg.d/*.gpg", "etc/apt/keyrings/*.gpg"} {
		m, _ := filepath.Glob(filepath.Join(root, pattern))
		for _, k := range m {
			if !strings.Contains(filepath.Base(k), "removed") {
				out = append(out, k)
			}
		}
	}
	return out
}

// checkSignature checks a clearsigned InRelease with gpgv against keyrings.
func checkSignature(ctx context.Context, data []byte, keyrings []string) (string, error) {
	if !clearsigned(data) {
		return sigNone, nil
	}
	f, err := os.CreateTemp("", "strata-inrelease-*")
	if err != nil {
		return "", err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return "", err
	}
	f.Close()
	home, err := os.MkdirTemp("", "strata-gpg-*")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(home)
	args := []string{"--homedir", home, "--status-fd", "1"}
	for _, k := range keyrings {
		args = append(args, "--keyring", k)
	}
	out, _ := hostexec.Output(hostexec.Command(ctx, "gpgv", append(args, f.Name())...), nil)
	status := string(out)
	switch {
	case strings.Contains(status, "[GNUPG:] BADSIG"):
		return sigBad, nil
	case strings.Contains(status, "[GNUPG:] VALIDSIG") || strings.Contains(status, "[GNUPG:] GOODSIG"):
		return sigGood, nil
	case strings.Contains(status, "[GNUPG:] NO_PUBKEY") || strings.Contains(status, "[GNUPG:] ERRSIG"):
		return sigUnknown, nil
	}
	return "", fmt.Errorf("gpgv gave no verdict: %s", strings.TrimSpace(status))
}

// clearsigned says whether data is one clearsigned message and nothing
// else: text before it or after its signature (which gpgv would skip and a
// reader of the body might not) makes it unsigned.
func clearsigned(data []byte) bool {
	const begin, end = "-----BEGIN PGP SIGNED MESSAGE-----\n", "\n-----END PGP SIGNATURE-----"
	t := bytes.TrimRight(data, " \t\r\n")
	return bytes.HasPrefix(t, []byte(begin)) && bytes.HasSuffix(t, []byte(end)) &&
		!bytes.Contains(t, []byte("\n-----BEGIN PGP SIGNED MESSAGE-----")) &&
		bytes.Count(t, []byte("\n-----BEGIN PGP SIGNATURE-----")) == 1
}

// keyringsID is the sha256 of the keyrings' contents, in order, or "" when
// one of them cannot be read.
func keyringsID(keyrings []string) string {
	h := sha256.New()
	for _, k := range keyrings {
		data, err := os.ReadFile(k)
		if err != nil {
			return ""
		}
		fmt.Fprintf(h, "%d\n", len(data))
		h.Write(data)
	}
	return hex.EncodeToString(h.Sum(nil))
}
