package server

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
)

// TestOpenAPIMatchesMux: every /v1 route the mux serves is in the
// document, and every operation of the document reaches a /v1 route of the
// mux; response schemas name the handlers' types.
func TestOpenAPIMatchesMux(t *testing.T) {
	c := fixture(t, backends(t)["sqlite"](t))
	s := New(c, Options{})
	b, err := json.Marshal(s.OpenAPI())
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		OpenAPI    string                                `json:"openapi"`
		Paths      map[string]map[string]json.RawMessage `json:"paths"`
		Components struct {
			Schemas map[string]struct {
				Properties map[string]any `json:"properties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi %q", doc.OpenAPI)
	}
	inDoc := map[string]bool{}
	for p, ops := range doc.Paths {
		for m := range ops {
			inDoc[strings.ToUpper(m)+" "+p] = true
		}
	}
	inMux := map[string]bool{}
	for _, p := range s.patterns {
		if strings.Contains(p, " /v1/") {
			inMux[p] = true
		}
	}
	var missing []string
	for p := range inMux {
		if !inDoc[p] {
			missing = append(missing, "in the mux, not the document: "+p)
		}
	}
	for p := range inDoc {
		if !inMux[p] {
			missing = append(missing, "in the document, not the mux: "+p)
		}
		// And the mux really routes it there.
		method, path, _ := strings.Cut(p, " ")
		req := httptest.NewRequest(method, strings.NewReplacer("{name}", "x", "{version}", "1", "{channel}", "y").Replace(path), nil)
		if _, pat := s.mux.Handler(req); pat != p {
			missing = append(missing, "the mux routes "+p+" to "+pat)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Fatal(strings.Join(missing, "\n"))
	}
	if len(inDoc) < 16 {
		t.Fatalf("only %d operations", len(inDoc))
	}
	// Reflection, not hand-written: the schemas carry the types' JSON names.
	for typ, fields := range map[string][]string{
		"Version":      {"image", "version", "image_id", "packages", "layers", "artifacts", "evidence", "revoked"},
		"Shown":        {"version", "channels", "packages"},
		"ChannelHead":  {"version", "image_id", "since", "entry"},
		"ChannelEntry": {"previous", "action", "actor", "override"},
		"LineageView":  {"ancestors", "descendants", "stale"},
		"Diff":         {"packages_added", "image_id_changed"},
		"Policy":       {"require", "from", "min_age"},
		"Error":        {"error"},
	} {
		sch, ok := doc.Components.Schemas[typ]
		if !ok {
			t.Errorf("no schema %s", typ)
			continue
		}
		for _, f := range fields {
			if _, ok := sch.Properties[f]; !ok {
				t.Errorf("schema %s lacks %s", typ, f)
			}
		}
	}
	// The document is served.
	ts := httptest.NewServer(s)
	defer ts.Close()
	res, err := http.Get(ts.URL + "/v1/openapi.json")
	if err != nil || res.StatusCode != 200 || res.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /v1/openapi.json: %v %v", res, err)
	}
}
