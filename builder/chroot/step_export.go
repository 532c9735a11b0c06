package chroot

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	"github.com/hashicorp/packer-plugin-sdk/packerbuilderdata"

	"github.com/strata-build/packer-plugin-strata/export"
	"github.com/strata-build/packer-plugin-strata/internal/dpkg"
	"github.com/strata-build/packer-plugin-strata/internal/inroot"
	"github.com/strata-build/packer-plugin-strata/pkgcache"
)

// stepExport writes the committed image in every asked-for format (the
// flattened ones from the read-only view, oci from the layer store), with a
// sha256 beside each output, the package manifest read from the image's own
// dpkg database and artifact.json, and makes the artifact.
//
// Uses cfg, view, ledger, layers, image, cache; sets artifact and puts the
// ImageID, ParentImageID and OutputDir generated data.
type stepExport struct{}

func (s *stepExport) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	b := buildOf(state)
	cfg := b.cfg
	ui := uiOf(state)
	outDir := cfg.OutputDir
	img := b.image
	if slices.Contains(cfg.Formats, "disk") {
		// A disk without a bootable kernel fails here, before any output.
		how, err := export.CheckDisk(ctx, cfg.MountPath, cfg.diskOptions())
		if err != nil {
			return halt(state, err)
		}
		ui.Message("Disk: " + how)
	}

	pkgs, err := dpkg.ReadImage(b.view)
	if err != nil {
		return halt(state, fmt.Errorf("package manifest: %w", err))
	}
	if pkgs == nil {
		ui.Message("The image has no dpkg database of its own (/var/lib/dpkg/status): no package manifest")
	}
	var files []string
	manifest := export.Manifest{ImageID: img.ID, ParentImageID: img.Parent, Layers: img.Layers, BuildName: cfg.PackerBuildName, Source: sourceLabel(cfg), Architecture: cfg.Architecture}
	if b.cache != nil {
		rel := b.cache.Releases()
		if len(rel) > 0 {
			snap := &export.PackageSnapshot{ID: pkgcache.SnapshotID(rel), Releases: map[string]string{}}
			for u, h := range rel {
				snap.Releases[u] = "sha256:" + h
			}
			manifest.PackageSnapshot = snap
		}
	}
	if pkgs != nil {
		p := filepath.Join(outDir, export.PackagesName)
		if err := export.WriteFileAtomic(p, dpkg.TSV(pkgs), 0o644); err != nil {
			return halt(state, fmt.Errorf("writing package manifest: %w", err))
		}
		files = append(files, p)
		manifest.Packages = export.PackagesName
		osID, osVersion, err := osRelease(b.view)
		if err != nil {
			return halt(state, fmt.Errorf("making the SBOM: %w", err))
		}
		bom, err := export.SBOM(pkgs, export.SBOMInfo{ImageID: img.ID, Name: cfg.PackerBuildName, Created: img.Created, OSID: osID, OSVersion: osVersion})
		if err != nil {
			return halt(state, fmt.Errorf("making the SBOM: %w", err))
		}
		sb := filepath.Join(outDir, export.SBOMName)
		if err := export.WriteFileAtomic(sb, bom, 0o644); err != nil {
			return halt(state, fmt.Errorf("writing the SBOM: %w", err))
		}
		files = append(files, sb)
		manifest.SBOM = export.SBOMName
		ui.Message(fmt.Sprintf("Package manifest: %d packages in %s and %s (CycloneDX 1.5)", len(pkgs), export.PackagesName, export.SBOMName))
	}

	opt := export.Options{
		Formats:             cfg.Formats,
		Ext4FreeSpace:       cfg.ext4FreeBytes,
		Ext4InodeRatio:      int64(cfg.Ext4InodeRatio),
		SquashfsCompression: cfg.SquashfsCompression,
		OCI:                 export.OCIOptions{Compression: cfg.OCICompression, Version: cfg.ImageVersion, BaseName: cfg.ParentName},
		Disk:                cfg.diskOptions(),
		Report:              ui.Message,
		Tracker:             b.ledger,
	}
	opt.Warn = func(m string) { ui.Error("Warning: " + m) }
	if t, ok := cfg.clampTime(); ok {
		opt.ClampTime = t
	}
	if len(cfg.Formats) == 0 {
		ui.Say("Exporting no output (formats = [\"none\"]); writing " + outDir + "'s artifact.json")
	} else {
		ui.Say(fmt.Sprintf("Exporting %s to %s ...", strings.Join(cfg.Formats, ", "), outDir))
	}
	start := time.Now()
	res, err := export.Export(ctx, export.Source{Root: cfg.MountPath, Store: b.layers, Image: img}, outDir, opt)
	if err != nil {
		return halt(state, fmt.Errorf("export: %w", err))
	}
	ui.Message(fmt.Sprintf("Export done in %s", time.Since(start).Round(time.Millisecond)))
	for _, o := range res.Outputs {
		files = append(files, o.Path)
		switch o.Format {
		case "dir":
			files = append(files, filepath.Join(outDir, export.TreeDigestName))
		case "oci":
		default:
			files = append(files, o.Path+".sha256")
		}
	}
	manifest.RootfsDigest = res.RootfsDigest
	manifest.Outputs = res.Outputs
	if err := export.WriteManifest(outDir, &manifest); err != nil {
		return halt(state, fmt.Errorf("writing %s: %w", export.ManifestName, err))
	}
	files = append(files, filepath.Join(outDir, export.ManifestName))
	// Packer's post-processors (checksum, compress, ...) read Files() as
	// regular files; the dir and oci outputs are directories.
	files, dirs, err := splitDirs(files)
	if err != nil {
		return halt(state, err)
	}
	// The build.* variables post-processors see.
	data := packerbuilderdata.GeneratedData{State: state}
	data.Put("ImageID", img.ID)
	data.Put("ParentImageID", img.Parent)
	data.Put("OutputDir", outDir)
	b.artifact = &Artifact{
		ImageID:       img.ID,
		ParentID:      img.Parent,
		Layers:        img.Layers,
		Digest:        res.RootfsDigest,
		OutputDir:     outDir,
		Outputs:       res.Outputs,
		files:         files,
		dirs:          dirs,
		buildName:     cfg.PackerBuildName,
		source:        sourceLabel(cfg),
		manifest:      manifest,
		generatedData: state.Get(stateGeneratedData).(map[string]interface{}),
		runUUID:       os.Getenv("PACKER_RUN_UUID"),
		configHash:    cfg.configHash,
		storeDir:      cfg.StoreDir,
	}
	return multistep.ActionContinue
}

func (s *stepExport) Cleanup(multistep.StateBag) {}

// splitDirs separates the directories among the build's outputs from the
// regular files.
func splitDirs(paths []string) (files, dirs []string, err error) {
	for _, p := range paths {
		fi, err := os.Lstat(p)
		if err != nil {
			return nil, nil, fmt.Errorf("output %s: %w", p, err)
		}
		if fi.IsDir() {
			dirs = append(dirs, p)
		} else {
			files = append(files, p)
		}
	}
	return files, dirs, nil
}

func sourceLabel(cfg *Config) string {
	switch {
	case cfg.Bootstrap != nil:
		return "bootstrap:" + cfg.Bootstrap.Suite + "/" + cfg.Bootstrap.Variant
	case cfg.Parent != "":
		return "parent:" + cfg.parentID
	}
	return "archive:" + filepath.Base(cfg.SourceArchive)
}

// maxOSReleaseSize bounds os-release, a few lines of KEY=value.
const maxOSReleaseSize = 64 << 10

// osRelease reads ID and VERSION_ID from the image's os-release, the first
// of /etc/os-release and /usr/lib/os-release that is there. /etc/os-release
// is usually a link to the other: it is followed inside the image, and what
// it leads to is read as ReadRegular reads any file from an image.
func osRelease(root *inroot.Root) (id, version string, err error) {
	for _, p := range []string{"/etc/os-release", "/usr/lib/os-release"} {
		target, err := root.ResolveFinal(p)
		if err != nil {
			return "", "", fmt.Errorf("%s: %w", p, err)
		}
		b, err := root.ReadRegular(target, maxOSReleaseSize)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return "", "", err
		}
		for _, line := range strings.Split(string(b), "\n") {
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				continue
			}
			v = strings.Trim(v, `"'`)
			switch k {
			case "ID":
				id = v
			case "VERSION_ID":
				version = v
			}
		}
		return id, version, nil
	}
	return "", "", nil
}
