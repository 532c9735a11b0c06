package server

import (
	"encoding"
	"encoding/json"
	"net/http"
	"reflect"
	"regexp"
	"strings"
	"time"
)

// The OpenAPI 3 document is made from the routes and, by reflection, from
// the very Go types the handlers decode and encode: a field added to a
// catalog type shows up in the document without anyone writing it down.

// OpenAPI returns the document.
func (s *Server) OpenAPI() map[string]any {
	g := &schemaGen{defs: map[string]any{}}
	paths := map[string]any{}
	for _, r := range s.routes {
		op := map[string]any{
			"summary":     r.Summary,
			"operationId": operationID(r),
			"responses":   s.responses(g, r),
		}
		var params []any
		for _, name := range pathParams(r.Path) {
			params = append(params, map[string]any{"name": name, "in": "path", "required": true, "schema": map[string]any{"type": "string"}})
		}
		for _, q := range r.Query {
			params = append(params, map[string]any{"name": q.Name, "in": "query", "required": q.Required, "description": q.Description, "schema": map[string]any{"type": "string"}})
		}
		if r.ETag {
			params = append(params, map[string]any{"name": "If-None-Match", "in": "header", "required": false,
				"description": "the ETag of the answer the client has: 304 when it is still current", "schema": map[string]any{"type": "string"}})
		}
		if params != nil {
			op["parameters"] = params
		}
		if r.In != nil {
			op["requestBody"] = map[string]any{"required": true, "content": map[string]any{"application/json": map[string]any{"schema": g.schema(r.In)}}}
		}
		if r.Action != "" {
			op["security"] = []any{map[string]any{"bearer": []any{}}}
			op["description"] = "Needs a bearer token with the scope " + r.Action + ":IMAGE (or " + r.Action + ":*); the token's name is recorded as the actor."
		} else if s.opt.ReadTokenRequired {
			op["security"] = []any{map[string]any{"bearer": []any{}}}
		}
		item, _ := paths[r.Path].(map[string]any)
		if item == nil {
			item = map[string]any{}
			paths[r.Path] = item
		}
		item[strings.ToLower(r.Method)] = op
	}
	paths["/v1/openapi.json"] = map[string]any{"get": map[string]any{
		"summary": "This document", "operationId": "openapi",
		"responses": map[string]any{"200": map[string]any{"description": "the OpenAPI 3 document", "content": map[string]any{"application/json": map[string]any{"schema": map[string]any{"type": "object"}}}}},
	}}
	g.schema(reflect.TypeFor[Error]())
	return map[string]any{
		"openapi": "3.0.3",
		"info": map[string]any{
			"title":       "Strata catalog API",
			"version":     "v1",
			"description": "The Strata image catalog over HTTP (strata serve): the JSON of the CLI's --json, under /v1.",
		},
		"paths": paths,
		"components": map[string]any{
			"schemas":         g.defs,
			"securitySchemes": map[string]any{"bearer": map[string]any{"type": "http", "scheme": "bearer", "description": "a token from strata token create"}},
		},
	}
}

func (s *Server) responses(g *schemaGen, r route) map[string]any {
	errRef := map[string]any{"application/json": map[string]any{"schema": map[string]any{"$ref": "#/components/schemas/Error"}}}
	out := map[string]any{
		"200": map[string]any{"description": "OK", "content": map[string]any{"application/json": map[string]any{"schema": g.schema(r.Out)}}},
		"400": map[string]any{"description": "bad input", "content": errRef},
		"404": map[string]any{"description": "no such image, version or channel", "content": errRef},
		"429": map[string]any{"description": "rate limited", "content": errRef},
	}
	if r.ETag {
		out["304"] = map[string]any{"description": "not modified: the If-None-Match ETag is current"}
	}
	if r.Action != "" || s.opt.ReadTokenRequired {
		out["401"] = map[string]any{"description": "no token, or an unknown or revoked one", "content": errRef}
		out["403"] = map[string]any{"description": "the token's scopes do not allow this", "content": errRef}
	}
	if r.Action != "" {
		out["409"] = map[string]any{"description": "refused by the catalog's rules (policy, revoked, nothing to roll back to, conflict)", "content": errRef}
		out["413"] = map[string]any{"description": "request body too large", "content": errRef}
	}
	return out
}

var pathParamRe = regexp.MustCompile(`\{([a-z]+)\}`)

func pathParams(p string) []string {
	var out []string
	for _, m := range pathParamRe.FindAllStringSubmatch(p, -1) {
		out = append(out, m[1])
	}
	return out
}

// operationID is the method, the path's words and its parameters:
// getImagesVersionsByNameVersion.
func operationID(r route) string {
	id := strings.ToLower(r.Method)
	title := func(p string) string {
		p = strings.ReplaceAll(p, "-", "")
		return strings.ToUpper(p[:1]) + p[1:]
	}
	for _, p := range strings.Split(strings.TrimPrefix(r.Path, "/v1/"), "/") {
		if !strings.HasPrefix(p, "{") {
			id += title(p)
		}
	}
	if ps := pathParams(r.Path); len(ps) > 0 {
		id += "By"
		for _, p := range ps {
			id += title(p)
		}
	}
	return id
}

func (s *Server) serveOpenAPI(w http.ResponseWriter, r *http.Request) {
	b, err := json.MarshalIndent(s.OpenAPI(), "", "  ")
	if err != nil {
		writeError(w, r, http.StatusInternalServerError, "encoding the document")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(append(b, '\n'))
}

// schemaGen turns Go types into JSON Schema as encoding/json writes them;
// named struct types become components.
type schemaGen struct {
	defs map[string]any
}

var (
	timeType      = reflect.TypeFor[time.Time]()
	marshalerType = reflect.TypeFor[json.Marshaler]()
	textType      = reflect.TypeFor[encoding.TextMarshaler]()
)

func (g *schemaGen) schema(t reflect.Type) map[string]any {
	nullable := false
	for t.Kind() == reflect.Pointer {
		t, nullable = t.Elem(), true
	}
	out := g.schemaOf(t)
	if nullable && out["$ref"] == nil {
		out["nullable"] = true
	}
	return out
}

func (g *schemaGen) schemaOf(t reflect.Type) map[string]any {
	switch {
	case t == timeType:
		return map[string]any{"type": "string", "format": "date-time"}
	case t.Implements(marshalerType) || t.Implements(textType) || reflect.PointerTo(t).Implements(textType):
		// Types with their own text form (catalog.Duration) are strings.
		return map[string]any{"type": "string", "description": t.String()}
	}
	switch t.Kind() {
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32:
		return map[string]any{"type": "integer", "format": "int32"}
	case reflect.Int64, reflect.Uint64:
		return map[string]any{"type": "integer", "format": "int64"}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Slice, reflect.Array:
		return map[string]any{"type": "array", "items": g.schema(t.Elem())}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": g.schema(t.Elem())}
	case reflect.Interface:
		return map[string]any{}
	case reflect.Struct:
		if t.Name() == "" {
			return g.structSchema(t)
		}
		name := t.Name()
		if _, ok := g.defs[name]; !ok {
			g.defs[name] = nil // a placeholder against recursion
			g.defs[name] = g.structSchema(t)
		}
		return map[string]any{"$ref": "#/components/schemas/" + name}
	}
	return map[string]any{}
}

// structSchema lists the fields encoding/json writes: embedded structs
// without a tag are inlined, "-" and unexported fields left out.
func (g *schemaGen) structSchema(t reflect.Type) map[string]any {
	props := map[string]any{}
	var required []string
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			tag := f.Tag.Get("json")
			if tag == "-" {
				continue
			}
			name, opts, _ := strings.Cut(tag, ",")
			ft := f.Type
			if f.Anonymous && name == "" {
				for ft.Kind() == reflect.Pointer {
					ft = ft.Elem()
				}
				if ft.Kind() == reflect.Struct {
					walk(ft)
					continue
				}
			}
			if !f.IsExported() {
				continue
			}
			if name == "" {
				name = f.Name
			}
			props[name] = g.schema(f.Type)
			if !strings.Contains(opts, "omitempty") {
				required = append(required, name)
			}
		}
	}
	walk(t)
	out := map[string]any{"type": "object", "properties": props}
	if len(required) > 0 {
		out["required"] = required
	}
	return out
}
