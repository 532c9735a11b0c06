package catalog

import (
	"encoding/json"
	"fmt"

	registryimage "github.com/hashicorp/packer-plugin-sdk/packer/registry/image"
)

// Artifact state arrives over the plugin RPC connection as generic values:
// maps keyed by interface{}, numbers of any width, structs as maps. These
// helpers read it leniently.

// plainValue turns v into JSON-shaped values: maps keyed by strings.
func plainValue(v interface{}) interface{} {
	switch t := v.(type) {
	case map[interface{}]interface{}:
		m := make(map[string]interface{}, len(t))
		for k, x := range t {
			m[fmt.Sprint(k)] = plainValue(x)
		}
		return m
	case map[string]interface{}:
		m := make(map[string]interface{}, len(t))
		for k, x := range t {
			m[k] = plainValue(x)
		}
		return m
	case map[string]string:
		m := make(map[string]interface{}, len(t))
		for k, x := range t {
			m[k] = x
		}
		return m
	case []interface{}:
		out := make([]interface{}, len(t))
		for i, x := range t {
			out[i] = plainValue(x)
		}
		return out
	case []byte:
		return string(t)
	}
	return v
}

// plainMap is v as a map keyed by strings, or an empty map.
func plainMap(v interface{}) map[string]interface{} {
	if m, ok := plainValue(v).(map[string]interface{}); ok {
		return m
	}
	return map[string]interface{}{}
}

// jsonOf is v, made plain, as JSON.
func jsonOf(v interface{}) ([]byte, error) {
	return json.Marshal(plainValue(v))
}

// str is v when it is a string (or bytes), else "".
func str(v interface{}) string {
	switch t := v.(type) {
	case string:
		return t
	case []byte:
		return string(t)
	}
	return ""
}

// registryImages reads registry image metadata: one image or a list, as
// structs in-process or maps after RPC.
func registryImages(v interface{}) ([]registryimage.Image, error) {
	switch t := v.(type) {
	case nil:
		return nil, nil
	case *registryimage.Image:
		return []registryimage.Image{*t}, nil
	case []*registryimage.Image:
		out := make([]registryimage.Image, 0, len(t))
		for _, i := range t {
			out = append(out, *i)
		}
		return out, nil
	}
	b, err := jsonOf(v)
	if err != nil {
		return nil, err
	}
	var list []registryimage.Image
	if json.Unmarshal(b, &list) == nil {
		return list, nil
	}
	var one registryimage.Image
	if err := json.Unmarshal(b, &one); err != nil {
		return nil, err
	}
	if one.ImageID == "" {
		return nil, nil
	}
	return []registryimage.Image{one}, nil
}
