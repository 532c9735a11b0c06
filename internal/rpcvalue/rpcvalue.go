// Package rpcvalue reads values that crossed Packer's plugin RPC connection
// (configurations, artifact state): maps keyed by interface{}, numbers of
// any width, byte strings. Plain turns them into JSON-shaped values.
package rpcvalue

import "fmt"

// Plain is v with every map keyed by strings and every byte string a
// string, recursively; other values are left as they are.
func Plain(v interface{}) interface{} {
	switch t := v.(type) {
	case map[interface{}]interface{}:
		m := make(map[string]interface{}, len(t))
		for k, x := range t {
			m[fmt.Sprint(k)] = Plain(x)
		}
		return m
	case map[string]interface{}:
		m := make(map[string]interface{}, len(t))
		for k, x := range t {
			m[k] = Plain(x)
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
			out[i] = Plain(x)
		}
		return out
	case []byte:
		return string(t)
	}
	return v
}

// Map is v made plain when it is a map, else an empty map.
func Map(v interface{}) map[string]interface{} {
	if m, ok := Plain(v).(map[string]interface{}); ok {
		return m
	}
	return map[string]interface{}{}
}
