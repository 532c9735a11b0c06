package server

import (
	"fmt"
	"sort"
	"strings"
)

// Reference is the API reference in Markdown, made from the OpenAPI
// document (docs/strata-serve.md holds it between markers; a test keeps it
// current and `go generate ./server` rewrites it).
func (s *Server) Reference() string {
	doc := s.OpenAPI()
	var b strings.Builder
	paths := doc["paths"].(map[string]any)
	keys := make([]string, 0, len(paths))
	for p := range paths {
		keys = append(keys, p)
	}
	sort.Strings(keys)
	b.WriteString("| method | path | what | answer | needs |\n| --- | --- | --- | --- | --- |\n")
	for _, p := range keys {
		ops := paths[p].(map[string]any)
		for _, m := range []string{"get", "post"} {
			op, ok := ops[m].(map[string]any)
			if !ok {
				continue
			}
			needs := "-"
			if _, ok := op["security"]; ok {
				needs = "token"
				if d, ok := op["description"].(string); ok {
					needs = "token: " + strings.TrimSuffix(strings.TrimPrefix(strings.Split(d, ";")[0], "Needs a bearer token with the scope "), ".")
				}
			}
			what := op["summary"].(string)
			if body, ok := op["requestBody"].(map[string]any); ok {
				what += "; body " + schemaName(body["content"].(map[string]any)["application/json"].(map[string]any)["schema"].(map[string]any))
			}
			var qs []string
			if params, ok := op["parameters"].([]any); ok {
				for _, x := range params {
					pm := x.(map[string]any)
					if pm["in"] != "path" {
						qs = append(qs, fmt.Sprintf("`%s` (%s)", pm["name"], pm["in"]))
					}
				}
			}
			if len(qs) > 0 {
				what += "; " + strings.Join(qs, ", ")
			}
			res := op["responses"].(map[string]any)
			answer := "-"
			if ok, _ := res["200"].(map[string]any); ok != nil {
				if c, _ := ok["content"].(map[string]any); c != nil {
					answer = schemaName(c["application/json"].(map[string]any)["schema"].(map[string]any))
				}
			}
			codes := make([]string, 0, len(res))
			for c := range res {
				codes = append(codes, c)
			}
			sort.Strings(codes)
			answer += " (" + strings.Join(codes, ", ") + ")"
			fmt.Fprintf(&b, "| %s | `%s` | %s | %s | %s |\n", strings.ToUpper(m), p, what, answer, needs)
		}
	}
	b.WriteString("\n### Types\n\nAs encoding/json writes the Go types (the CLI's `--json`); a field marked * is always present.\n")
	schemas := doc["components"].(map[string]any)["schemas"].(map[string]any)
	names := make([]string, 0, len(schemas))
	for n := range schemas {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		sc := schemas[n].(map[string]any)
		req := map[string]bool{}
		if r, ok := sc["required"].([]string); ok {
			for _, f := range r {
				req[f] = true
			}
		}
		props := sc["properties"].(map[string]any)
		fields := make([]string, 0, len(props))
		for f := range props {
			fields = append(fields, f)
		}
		sort.Strings(fields)
		var parts []string
		for _, f := range fields {
			mark := ""
			if req[f] {
				mark = "*"
			}
			parts = append(parts, fmt.Sprintf("`%s`%s %s", f, mark, schemaName(props[f].(map[string]any))))
		}
		fmt.Fprintf(&b, "\n- **%s**: %s\n", n, strings.Join(parts, ", "))
	}
	return b.String()
}

// schemaName is a schema in a few words: a type name, array of …, map of ….
func schemaName(s map[string]any) string {
	if r, ok := s["$ref"].(string); ok {
		return r[strings.LastIndex(r, "/")+1:]
	}
	switch s["type"] {
	case "array":
		return "[" + schemaName(s["items"].(map[string]any)) + "]"
	case "object":
		if ap, ok := s["additionalProperties"].(map[string]any); ok {
			return "map of " + schemaName(ap)
		}
		if _, ok := s["properties"]; ok {
			return "object"
		}
	case "string":
		if f, ok := s["format"].(string); ok {
			return f
		}
	}
	if t, ok := s["type"].(string); ok {
		return t
	}
	return "any"
}
