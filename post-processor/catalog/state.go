package catalog

import (
	"encoding/json"

	registryimage "github.com/hashicorp/packer-plugin-sdk/packer/registry/image"

	"github.com/strata-build/packer-plugin-strata/internal/rpcvalue"
)

// Artifact state arrives over the plugin RPC connection as generic values
// (internal/rpcvalue); these helpers read it leniently.

// plainMap is v as a map keyed by strings, or an empty map.
func plainMap(v interface{}) map[string]interface{} { return rpcvalue.Map(v) }

// jsonOf is v, made plain, as JSON.
func jsonOf(v interface{}) ([]byte, error) {
	return json.Marshal(rpcvalue.Plain(v))
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
