package chroot

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckHostFollowsLinks: an output_dir that leads into the store
// through a link overlaps it, as the same path written out would; Prepare,
// which checks only the template, takes it.
func TestCheckHostFollowsLinks(t *testing.T) {
	h := withHostSources(t, "deb http://mirror.test/debian bookworm main\n")
	raw := baseConfig(t)
	store := raw["store_dir"].(string)
	os.MkdirAll(filepath.Join(store, "layers"), 0o700)
	link := filepath.Join(t.TempDir(), "to-store")
	os.Symlink(store, link)
	raw["output_dir"] = filepath.Join(link, "layers")
	raw["packer_force"] = true
	err := checkedHost(t, h, raw)
	if err == nil || !strings.Contains(err.Error(), "output_dir") || !strings.Contains(err.Error(), "overlaps store_dir") {
		t.Fatalf("an output_dir leading into the store through a link: %v", err)
	}
}

// TestPrepareIgnoresHostState: an existing output dir and a work dir of
// someone else's are the build's business, not packer validate's.
func TestPrepareIgnoresHostState(t *testing.T) {
	h := withHostSources(t, "deb http://mirror.test/debian bookworm main\n")
	raw := baseConfig(t)
	out := t.TempDir()
	os.WriteFile(filepath.Join(out, "x"), nil, 0o644)
	raw["output_dir"] = out
	raw["store_dir"] = filepath.Join(t.TempDir(), "store")
	os.Mkdir(raw["store_dir"].(string), 0o777)
	os.Chmod(raw["store_dir"].(string), 0o777)
	c := Config{host: h}
	if _, err := c.Prepare(raw); err != nil {
		t.Fatalf("Prepare looked at the host: %v", err)
	}
	err := c.checkHost(context.Background())
	for _, want := range []string{"output_dir: " + out + " exists", "store_dir: "} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("checkHost: %v, want %q", err, want)
		}
	}
}
