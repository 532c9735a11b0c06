package catalog

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/strata-build/packer-plugin-strata/export"
)

// FromOutput fills v from a strata-chroot output directory that m (its
// artifact.json, read from the directory or handed over by the builder)
// describes, after checking every output and every other file it names (the
// package manifest above all) on disk against the size and sha256 m
// records: the catalog records only what is true. It takes the
// image ID, parent, layers, build name, files and the package manifest;
// what v already holds of the parent and build name stays.
func FromOutput(ctx context.Context, v *Version, dir string, m *export.Manifest) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if err := export.VerifyOutputs(ctx, abs, m); err != nil {
		return invalid("output directory %s: %v", dir, err)
	}
	v.ImageID = m.ImageID
	if v.ImageID == "" { // written before layers: the rootfs digest was the ID
		v.ImageID = m.RootfsDigest
	}
	if v.ParentID == "" {
		v.ParentID = m.ParentImageID
	}
	v.Layers = nil
	for _, l := range m.Layers {
		v.Layers = append(v.Layers, l.DiffID)
	}
	v.Architecture = m.Architecture
	v.Build.OutputDir = abs
	if v.Build.BuildName == "" {
		v.Build.BuildName = m.BuildName
	}
	v.Artifacts = nil
	for _, o := range m.Outputs {
		v.Artifacts = append(v.Artifacts, Artifact{Format: o.Format, Path: o.Path, Size: o.Size, SHA256: o.SHA256})
	}
	// Read once, checked against artifact.json's sha256, and parsed from
	// the bytes that were checked.
	var pkgs [][3]string
	if m.Packages != "" {
		b, err := export.ReadRecorded(abs, m, m.Packages)
		if err != nil {
			return invalid("output directory %s: package manifest: %v", dir, err)
		}
		if pkgs, err = export.ParsePackages(b); err != nil {
			return fmt.Errorf("output directory %s: package manifest: %w", dir, err)
		}
	}
	v.Packages = nil
	for _, p := range pkgs {
		v.Packages = append(v.Packages, Package{Name: p[0], Version: p[1], Arch: p[2]})
	}
	v.Evidence = EvidenceFromOutput(abs, m)
	return nil
}

// EvidenceFromOutput is the evidence an output directory's artifact.json
// records: each of its evidence entries (source post-processor), and a
// bootcheck derived from its boot_check (source builder) unless an entry
// is of that kind already. Report and statement become paths in dir; the
// report's sha256 is the one files records (VerifyOutputs checked it).
func EvidenceFromOutput(dir string, m *export.Manifest) []Evidence {
	var out []Evidence
	has := map[string]bool{}
	for _, e := range m.Evidence {
		has[e.Kind] = true
		r := fromExport(dir, e)
		r.Source = SourcePostProcessor
		out = append(out, r)
	}
	if m.BootCheck != nil && !has[KindBootCheck] {
		r := fromExport(dir, export.BootCheckEvidence(m.BootCheck, time.Time{}))
		r.Source = SourceBuilder
		out = append(out, r)
	}
	return out
}

func fromExport(dir string, e export.Evidence) Evidence {
	r := Evidence{Kind: e.Kind, Passed: e.Passed, Time: e.Time.UTC(), BootTimeMS: e.BootTimeMS,
		Counts: Counts{Passed: e.Counts.Passed, Failed: e.Counts.Failed, Skipped: e.Counts.Skipped}, ReportSHA256: e.ReportSHA256}
	if e.Report != "" {
		r.Report = filepath.Join(dir, e.Report)
	}
	if e.Statement != "" {
		r.Statement = filepath.Join(dir, e.Statement)
	}
	for _, f := range e.ExtraFiles {
		r.ExtraFiles = append(r.ExtraFiles, filepath.Join(dir, f))
	}
	return r
}

// ToExport is e as artifact.json and the in-toto statement describe it.
func (e Evidence) ToExport() export.Evidence {
	return export.Evidence{Kind: e.Kind, Passed: e.Passed, Time: e.Time, BootTimeMS: e.BootTimeMS, Report: e.Report, ReportSHA256: e.ReportSHA256,
		Statement: e.Statement, ExtraFiles: e.ExtraFiles, Counts: export.TestCounts{Passed: e.Counts.Passed, Failed: e.Counts.Failed, Skipped: e.Counts.Skipped}}
}

// WriteStatements writes an in-toto statement into the output directory
// dir for each piece of v's evidence that has none yet (the boot check's):
// strata-test writes its own beside its reports. The strata-catalog
// post-processor and `strata register --from-output` both call it.
func WriteStatements(dir, name string, v *Version) error {
	for i := range v.Evidence {
		e := &v.Evidence[i]
		if e.Statement != "" {
			continue
		}
		st, err := export.TestStatement(name, v.ImageID, e.ToExport())
		if err != nil {
			return err
		}
		path := filepath.Join(dir, export.StatementName(e.ToExport()))
		if _, err := export.WriteStatement(path, st); err != nil {
			return err
		}
		e.Statement = path
	}
	return nil
}
