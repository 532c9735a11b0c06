package chroot

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/strata-build/packer-plugin-strata/export"
)

// stepExport writes the torn-down tree in every asked-for format, with a
// sha256 beside each output and the package manifest, and makes the artifact.
type stepExport struct{}

func (s *stepExport) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	cfg := state.Get("config").(*Config)
	ui := state.Get("ui").(packersdk.Ui)
	root := state.Get("mount_path").(string)

	outDir, err := filepath.Abs(cfg.OutputDir)
	if err != nil {
		return halt(state, err)
	}
	manifest, err := packageManifest(ctx, root)
	if err != nil {
		return halt(state, err)
	}
	var files []string
	if manifest != nil {
		p := filepath.Join(outDir, export.PackagesName)
		if err := export.WriteFileAtomic(p, manifest, 0o644); err != nil {
			return halt(state, fmt.Errorf("writing package manifest: %w", err))
		}
		files = append(files, p)
		ui.Message(fmt.Sprintf("Package manifest: %d packages in %s", strings.Count(string(manifest), "\n"), export.PackagesName))
	}

	opt := export.Options{
		Formats:       cfg.Formats,
		Ext4FreeSpace: cfg.ext4FreeBytes,
		Report:        ui.Message,
		MoveDir:       true,
	}
	opt.Warn = func(m string) { ui.Error("Warning: " + m) }
	if epoch := os.Getenv("SOURCE_DATE_EPOCH"); epoch != "" {
		if n, err := strconv.ParseInt(epoch, 10, 64); err == nil {
			opt.ClampTime = time.Unix(n, 0)
		}
	}
	ui.Say(fmt.Sprintf("Exporting %s to %s ...", strings.Join(cfg.Formats, ", "), outDir))
	start := time.Now()
	res, err := export.Export(ctx, root, outDir, opt)
	if err != nil {
		return halt(state, fmt.Errorf("export: %w", err))
	}
	ui.Message(fmt.Sprintf("Export done in %s; rootfs digest %s", time.Since(start).Round(time.Millisecond), res.RootfsDigest))
	for _, o := range res.Outputs {
		files = append(files, o.Path, o.Path+".sha256")
	}
	if err := export.WriteManifest(outDir, export.Manifest{RootfsDigest: res.RootfsDigest, BuildName: cfg.PackerBuildName,
		Source: sourceLabel(cfg), Outputs: res.Outputs}); err != nil {
		return halt(state, fmt.Errorf("writing %s: %w", export.ManifestName, err))
	}
	files = append(files, filepath.Join(outDir, export.ManifestName))
	state.Put("artifact", &Artifact{
		Digest:    res.RootfsDigest,
		OutputDir: outDir,
		Outputs:   res.Outputs,
		files:     files,
		buildName: cfg.PackerBuildName,
		source:    sourceLabel(cfg),
	})
	return multistep.ActionContinue
}

func (s *stepExport) Cleanup(multistep.StateBag) {}

// packageManifest lists the image's installed packages (name, version,
// architecture), read with the host's dpkg-query from the image's dpkg
// database. An image without dpkg has no manifest.
func packageManifest(ctx context.Context, root string) ([]byte, error) {
	admin := filepath.Join(root, "var/lib/dpkg")
	if _, err := os.Stat(filepath.Join(admin, "status")); err != nil {
		return nil, nil
	}
	if _, err := exec.LookPath("dpkg-query"); err != nil {
		return nil, nil
	}
	out, err := exec.CommandContext(ctx, "dpkg-query", "--admindir="+admin, "-W",
		"-f=${db:Status-Abbrev}\t${Package}\t${Version}\t${Architecture}\n").Output()
	if err != nil {
		return nil, fmt.Errorf("reading the package manifest: %w", err)
	}
	var b strings.Builder
	for _, line := range strings.Split(string(out), "\n") {
		status, rest, ok := strings.Cut(line, "\t")
		if ok && strings.HasPrefix(status, "ii") {
			b.WriteString(rest + "\n")
		}
	}
	return []byte(b.String()), nil
}

func sourceLabel(cfg *Config) string {
	if cfg.Bootstrap != nil {
		return "bootstrap:" + cfg.Bootstrap.Suite + "/" + cfg.Bootstrap.Variant
	}
	return "archive:" + filepath.Base(cfg.SourceArchive)
}
