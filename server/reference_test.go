package server

import (
	"os"
	"strings"
	"testing"
)

//go:generate env STRATA_UPDATE_DOCS=1 go test -count=1 -run TestDocsAPIReference .

const (
	refBegin = "<!-- BEGIN API REFERENCE (generated from /v1/openapi.json: go generate ./server) -->\n"
	refEnd   = "<!-- END API REFERENCE -->\n"
)

// TestDocsAPIReference: docs/strata-serve.md holds the reference made from
// the OpenAPI document, as it is now.
func TestDocsAPIReference(t *testing.T) {
	const path = "../docs/strata-serve.md"
	doc, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	before, rest, ok1 := strings.Cut(string(doc), refBegin)
	_, after, ok2 := strings.Cut(rest, refEnd)
	if !ok1 || !ok2 {
		t.Fatalf("%s lacks the reference markers", path)
	}
	want := before + refBegin + New(nil, Options{}).Reference() + refEnd + after
	if want == string(doc) {
		return
	}
	if os.Getenv("STRATA_UPDATE_DOCS") == "1" {
		if err := os.WriteFile(path+".tmp", []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(path+".tmp", path); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Fatalf("%s's API reference is stale: run go generate ./server (make generate)", path)
}
