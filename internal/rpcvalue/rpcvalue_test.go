package rpcvalue

import (
	"encoding/json"
	"testing"
)

func TestPlain(t *testing.T) {
	in := map[interface{}]interface{}{
		"a": []interface{}{map[interface{}]interface{}{"b": int8(1)}, []byte("bytes")},
		"c": map[string]string{"d": "e"},
	}
	b, err := json.Marshal(Plain(in))
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"a":[{"b":1},"bytes"],"c":{"d":"e"}}` {
		t.Errorf("plain: %s", b)
	}
	if m := Map("not a map"); len(m) != 0 {
		t.Errorf("Map of a string: %v", m)
	}
}
