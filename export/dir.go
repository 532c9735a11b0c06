package export

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/strata-build/packer-plugin-strata/internal/durable"
)

// TreeDigestName is the file beside a dir output that records its tree
// digest: "sha256:<hex>  rootfs/" — the sha256 of the canonical tar of the
// tree, which `strata verify` recomputes.
const TreeDigestName = "rootfs.tree-sha256"

// dir copies the tree and records the copy's tree digest, taken from the
// copy itself: the rootfs digest of the tar stream may differ (it clamps
// times to source_date_epoch and keeps the holes' layout).
func (e *exporter) dir() (Output, error) {
	final := filepath.Join(e.outDir, FileName("dir"))
	tmp := tmpName(e.outDir, "dir")
	os.RemoveAll(tmp)
	// cp -a keeps owners, modes, hard links, devices, xattrs, capabilities
	// and holes.
	// --sparse=auto keeps holes where the tree has them, and only there: the
	// tree digest depends on where the holes are.
	if err := e.run("cp", "-a", "--reflink=auto", "--sparse=auto", e.root, tmp); err != nil {
		os.RemoveAll(tmp)
		return Output{}, err
	}
	// On the disk before it takes its name, as every output file is. The
	// copy is whole, so its write-out runs while the digest reads it back
	// (from the page cache): one waits on the disk, the other on the CPU.
	synced := make(chan error, 1)
	go func() { synced <- durable.FS(tmp) }()
	digest, err := TreeDigest(e.ctx, tmp)
	serr := <-synced
	if err != nil {
		os.RemoveAll(tmp)
		return Output{}, err
	}
	digest = strings.TrimPrefix(digest, "sha256:")
	if serr != nil {
		os.RemoveAll(tmp)
		return Output{}, fmt.Errorf("syncing the dir output: %w", serr)
	}
	if err := os.Rename(tmp, final); err != nil {
		return Output{}, err
	}
	if err := writeTreeDigest(e.outDir, digest); err != nil {
		return Output{}, err
	}
	return Output{Format: "dir", Path: final, Size: e.tree.Allocated, SHA256: digest}, nil
}

func writeTreeDigest(outDir, hex string) error {
	return WriteFileAtomic(filepath.Join(outDir, TreeDigestName), []byte("sha256:"+hex+"  "+FileName("dir")+"/\n"), 0o644)
}

// VerifyTree recomputes a dir output's tree digest and compares it with its
// rootfs.tree-sha256. It returns the digest it computed.
func VerifyTree(ctx context.Context, outDir string) (string, error) {
	f, err := os.Open(filepath.Join(outDir, TreeDigestName))
	if err != nil {
		return "", fmt.Errorf("%s has no dir output's %s: %w", outDir, TreeDigestName, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() {
		return "", fmt.Errorf("%s is empty", TreeDigestName)
	}
	fields := strings.Fields(sc.Text())
	if len(fields) != 2 || !strings.HasPrefix(fields[0], "sha256:") {
		return "", fmt.Errorf("%s: want \"sha256:<hex>  rootfs/\", got %q", TreeDigestName, sc.Text())
	}
	got, err := TreeDigest(ctx, filepath.Join(outDir, strings.TrimSuffix(fields[1], "/")))
	if err != nil {
		return "", err
	}
	if got != fields[0] {
		return got, fmt.Errorf("the tree in %s has digest %s, but %s records %s: it changed since it was written", outDir, got, TreeDigestName, fields[0])
	}
	return got, nil
}
