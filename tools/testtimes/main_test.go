package main

import (
	"bytes"
	"strings"
	"testing"
)

// What `go test -json` printed for: a package that passed, one whose test
// failed, one that did not build.
const run = `{"Action":"start","Package":"p/a"}
{"Action":"run","Package":"p/a","Test":"TestQuick"}
{"Action":"output","Package":"p/a","Test":"TestQuick","Output":"=== RUN   TestQuick\n"}
{"Action":"output","Package":"p/a","Test":"TestQuick","Output":"--- PASS: TestQuick (0.50s)\n"}
{"Action":"pass","Package":"p/a","Test":"TestQuick","Elapsed":0.5}
{"Action":"run","Package":"p/a","Test":"TestSlow"}
{"Action":"output","Package":"p/a","Test":"TestSlow/sub","Output":"sub\n"}
{"Action":"pass","Package":"p/a","Test":"TestSlow/sub","Elapsed":90}
{"Action":"pass","Package":"p/a","Test":"TestSlow","Elapsed":91.25}
{"Action":"output","Package":"p/a","Output":"ok  \tp/a\t92.0s\n"}
{"Action":"pass","Package":"p/a","Elapsed":92}
{"Action":"run","Package":"p/b","Test":"TestBroken"}
{"Action":"output","Package":"p/b","Test":"TestBroken","Output":"    b_test.go:9: boom\n"}
{"Action":"output","Package":"p/b","Test":"TestBroken","Output":"--- FAIL: TestBroken (2.00s)\n"}
{"Action":"fail","Package":"p/b","Test":"TestBroken","Elapsed":2}
{"Action":"output","Package":"p/b","Output":"FAIL\n"}
{"Action":"output","Package":"p/b","Output":"FAIL\tp/b\t2.1s\n"}
{"Action":"fail","Package":"p/b","Elapsed":2.1}
{"ImportPath":"p/c [p/c.test]","Action":"build-output","Output":"c.go:3:1: syntax error\n"}
{"ImportPath":"p/c [p/c.test]","Action":"build-fail"}
{"Action":"start","Package":"p/c"}
{"Action":"output","Package":"p/c","Output":"FAIL\tp/c [build failed]\n"}
{"Action":"fail","Package":"p/c","Elapsed":0,"FailedBuild":"p/c [p/c.test]"}
`

func TestSummarize(t *testing.T) {
	var out bytes.Buffer
	failed, err := summarize(strings.NewReader(run), &out, 2)
	if err != nil || !failed {
		t.Fatalf("failed %v, err %v", failed, err)
	}
	got := out.String()
	for _, want := range []string{
		"ok  \tp/a\t92.0s\n",
		"    b_test.go:9: boom\n--- FAIL: TestBroken (2.00s)\nFAIL\nFAIL\tp/b\t2.1s\n",
		"c.go:3:1: syntax error\n",
		"FAIL\tp/c [build failed]\n",
		"slowest tests:\n    91.2s  TestSlow  p/a\n     2.0s  TestBroken  p/b\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in:\n%s", want, got)
		}
	}
	if strings.Contains(got, "RUN   TestQuick") || strings.Contains(got, "sub\n") {
		t.Errorf("a passing test's output printed:\n%s", got)
	}
	if failed, _ := summarize(strings.NewReader(run[:strings.Index(run, `{"Action":"run","Package":"p/b"`)]), &bytes.Buffer{}, 2); failed {
		t.Error("a passing run failed")
	}
}
