// Package test is the strata-test post-processor: it runs checks against
// the image of the strata-chroot build before it — in a throwaway
// read-only overlay of its tree (container mode) or in its disk booted
// under QEMU (vm mode) — without changing a byte of it, writes a JUnit XML
// and a JSON report into the output directory, and appends the result to
// artifact.json as evidence (with an in-toto statement) for strata-catalog
// to register.
package test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2/hcldec"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/strata-build/packer-plugin-strata/export"
	"github.com/strata-build/packer-plugin-strata/internal/rpcvalue"
	"github.com/strata-build/packer-plugin-strata/internal/storeroot"
	"github.com/strata-build/packer-plugin-strata/layer"
)

// strata-chroot's artifact: its builder ID and state keys (the builder is
// a component this one does not import).
const (
	chrootBuilderID = "strata.chroot"
	stateManifest   = "strata.manifest"
	stateBuild      = "strata.build"
)

// PostProcessor is strata-test.
type PostProcessor struct {
	config Config
	runner runner
}

func (p *PostProcessor) ConfigSpec() hcldec.ObjectSpec { return p.config.FlatMapstructure().HCL2Spec() }

func (p *PostProcessor) Configure(raws ...interface{}) error { return p.config.Prepare(raws...) }

// PostProcess tests the artifact and passes it on with the evidence.
func (p *PostProcessor) PostProcess(ctx context.Context, ui packersdk.Ui, in packersdk.Artifact) (packersdk.Artifact, bool, bool, error) {
	c := &p.config
	if in.BuilderId() != chrootBuilderID {
		return nil, false, false, fmt.Errorf("strata-test tests strata-chroot's artifacts (builder ID %s), not %s", chrootBuilderID, in.BuilderId())
	}
	dir, _ := in.State("output_dir").(string)
	if dir == "" {
		return nil, false, false, errors.New("strata-test: the strata-chroot artifact names no output_dir")
	}
	m, err := manifestOf(in, dir)
	if err != nil {
		return nil, false, false, err
	}
	build := rpcvalue.Map(in.State(stateBuild))
	storeDir, _ := build["store_dir"].(string)

	cases := plan(c)
	j := job{Mode: c.Mode, Timeout: c.timeout, MemoryMiB: c.MemoryMiB, Accel: c.Accel, QEMU: c.QEMU}
	if c.ShowOutput {
		j.Live = func(l string) { ui.Message(l) }
	}
	switch c.Mode {
	case ModeVM:
		for _, o := range m.Outputs {
			if o.Format == "disk" {
				j.Disk = o.Path
			}
		}
		if j.Disk == "" {
			return nil, false, false, errors.New(`strata-test: mode = "vm" boots the artifact's disk, and the build wrote none: add "disk" to strata-chroot's formats, or use mode = "container"`)
		}
	default:
		var release func()
		j.Lowers, release, err = treeOf(storeDir, m)
		if err != nil {
			return nil, false, false, fmt.Errorf("strata-test: %w", err)
		}
		defer release()
	}
	jobDir, err := os.MkdirTemp("", "strata-test-job-")
	if err != nil {
		return nil, false, false, err
	}
	defer os.RemoveAll(jobDir)
	j.Dir = jobDir
	if err := writeJob(jobDir, cases); err != nil {
		return nil, false, false, fmt.Errorf("strata-test: %w", err)
	}

	r := p.runner
	if r == nil {
		r = hostRunner{}
	}
	ui.Say(fmt.Sprintf("strata-test: %d check(s) in %s mode against %s ...", len(cases), c.Mode, layer.ShortDigest(m.ImageID)))
	started := time.Now()
	out, runErr := r.run(ctx, j)
	if ctx.Err() != nil {
		return nil, false, false, fmt.Errorf("strata-test: %w", ctx.Err())
	}
	if out == nil {
		out = &outcome{}
	}
	why := ""
	if runErr != nil {
		why = "the run ended before it"
	}
	rep := &Report{Kind: c.Kind, Mode: c.Mode, Image: m.ImageID, Build: m.BuildName, Started: started.UTC(),
		DurationMS: time.Since(started).Milliseconds(), Accel: out.Accel, BootMS: out.Boot.Milliseconds(), ChecksMS: out.Checks.Milliseconds()}
	if c.Mode != ModeVM {
		rep.Accel, rep.BootMS = "", 0
	}
	rep.Results = evaluate(cases, parseLines(out.Lines), why)
	rep.Counts = counts(rep.Results)
	rep.Passed = runErr == nil && rep.Counts.Failed == 0 && rep.Counts.Skipped == 0
	if runErr != nil {
		rep.Error = runErr.Error()
	}
	ev, err := writeEvidence(dir, m, c, rep)
	if err != nil {
		return nil, false, false, fmt.Errorf("strata-test: %w", err)
	}
	ui.Say(rep.Summary())
	ui.Message(fmt.Sprintf("Reports: %s, %s; evidence %s (%s) appended to %s", filepath.Join(dir, ev.Report), filepath.Join(dir, c.ReportName+".junit.xml"),
		c.Kind, passFail(rep.Passed), filepath.Join(dir, export.ManifestName)))

	if !rep.Passed {
		msg := failureText(rep)
		if c.OnFailure == OnFailureRegister {
			ui.Error(msg)
			ui.Message("on_failure = \"register\": the artifact passes on with failed evidence; strata-catalog registers it for inspection and moves no channel")
		} else {
			return nil, false, false, fmt.Errorf("%s\nNothing after strata-test runs: the image is not registered (on_failure = \"register\" registers it with the failed evidence, for inspection)", msg)
		}
	}
	a, err := newArtifact(in, m, dir, []string{ev.Report, c.ReportName + ".junit.xml", ev.Statement})
	if err != nil {
		return nil, false, false, err
	}
	// The input's files are the output's: it must stay.
	return a, true, true, nil
}

func passFail(ok bool) string {
	if ok {
		return "passed"
	}
	return "FAILED"
}

// failureText names each failed check with its output.
func failureText(rep *Report) string {
	var b strings.Builder
	fmt.Fprintf(&b, "strata-test: %d of %d check(s) failed", rep.Counts.Failed+rep.Counts.Skipped, len(rep.Results))
	if rep.Error != "" {
		fmt.Fprintf(&b, "; the run: %s", rep.Error)
	}
	for _, r := range rep.Results {
		if r.Passed {
			continue
		}
		fmt.Fprintf(&b, "\n--- check %s (%s): %s", r.Name, r.Type, r.Message)
		if o := strings.TrimRight(r.Output, "\n"); o != "" {
			lines := strings.Split(o, "\n")
			if len(lines) > 40 {
				lines = append([]string{fmt.Sprintf("(last 40 of %d lines)", len(lines))}, lines[len(lines)-40:]...)
			}
			fmt.Fprintf(&b, "\n    %s", strings.Join(lines, "\n    "))
		}
	}
	return b.String()
}

// treeOf is the image's tree for container mode: its layers in the store
// (read-only overlay lowers, held against garbage collection until release),
// else the build's dir output.
func treeOf(storeDir string, m *export.Manifest) ([]string, func(), error) {
	root, err := storeroot.Resolve(storeDir)
	if err == nil {
		if s, err := layer.OpenExisting(storeroot.Layout{Root: root}.Layers()); err == nil {
			if img, err := s.Image(m.ImageID); err == nil {
				if release, err := s.Hold(img); err == nil {
					if lowers, err := s.LowerDirs(img); err == nil && len(lowers) > 0 {
						return lowers, release, nil
					}
					release()
				}
			}
		}
	}
	for _, o := range m.Outputs {
		if o.Format == "dir" {
			return []string{o.Path}, func() {}, nil
		}
	}
	return nil, nil, fmt.Errorf(`container mode needs the image's layers (image %s is not in the store %s) or the build's "dir" output`, m.ImageID, root)
}

// manifestOf is the artifact's artifact.json as strata-chroot hands it
// over (after the RPC trip), else the file.
func manifestOf(in packersdk.Artifact, dir string) (*export.Manifest, error) {
	raw := in.State(stateManifest)
	if raw == nil {
		return export.ReadManifest(dir)
	}
	b, err := json.Marshal(rpcvalue.Plain(raw))
	if err != nil {
		return nil, fmt.Errorf("strata-test: the artifact's %s: %w", stateManifest, err)
	}
	return export.ParseManifest(dir, b)
}

// writeEvidence writes the reports and the in-toto statement into dir and
// appends the evidence to artifact.json (rewritten atomically).
func writeEvidence(dir string, m *export.Manifest, c *Config, rep *Report) (*export.Evidence, error) {
	jsonName, junitName := c.ReportName+".json", c.ReportName+".junit.xml"
	jb, err := rep.JSON()
	if err != nil {
		return nil, err
	}
	xb, err := rep.JUnit()
	if err != nil {
		return nil, err
	}
	if err := export.WriteFileAtomic(filepath.Join(dir, jsonName), jb, 0o644); err != nil {
		return nil, err
	}
	if err := export.WriteFileAtomic(filepath.Join(dir, junitName), xb, 0o644); err != nil {
		return nil, err
	}
	sum, _, err := export.FileSHA256(filepath.Join(dir, jsonName))
	if err != nil {
		return nil, err
	}
	e := export.Evidence{Kind: c.Kind, Passed: rep.Passed, Time: rep.Started.Add(time.Duration(rep.DurationMS) * time.Millisecond),
		Counts: rep.Counts, Report: jsonName, ReportSHA256: sum, BootTimeMS: rep.BootMS, ExtraFiles: []string{junitName}}
	for _, r := range rep.Results {
		if r.Passed {
			e.PassedTests = append(e.PassedTests, r.Name)
		} else {
			e.FailedTests = append(e.FailedTests, r.Name)
		}
	}
	name := m.BuildName
	if name == "" {
		name = c.PackerBuildName
	}
	st, err := export.TestStatement(name, m.ImageID, e)
	if err != nil {
		return nil, err
	}
	e.Statement = export.StatementName(e)
	if _, err := export.WriteStatement(filepath.Join(dir, e.Statement), st); err != nil {
		return nil, err
	}
	// A second run of the same kind replaces the first's record.
	kept := m.Evidence[:0]
	for _, x := range m.Evidence {
		if x.Kind != e.Kind {
			kept = append(kept, x)
		}
	}
	m.Evidence = append(kept, e)
	if err := export.WriteManifest(dir, m); err != nil {
		return nil, err
	}
	return &m.Evidence[len(m.Evidence)-1], nil
}
