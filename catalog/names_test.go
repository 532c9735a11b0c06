package catalog

import (
	"strings"
	"testing"
)

func TestNameAndVersionSyntax(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"base-os", true}, {"a", true}, {"app_1.2", true}, {strings.Repeat("a", 128), true},
		{strings.Repeat("a", 129), false}, {"", false}, {"-base", false}, {"Base", false}, {"base os", false}, {"base/os", false},
	} {
		if err := ValidName("image", tc.name); (err == nil) != tc.ok {
			t.Errorf("name %q: %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
	if err := ValidName("image", strings.Repeat("a", 129)); err == nil || !strings.Contains(err.Error(), "at most 128 characters") {
		t.Errorf("a long name: %v", err)
	}
	for _, tc := range []struct {
		version string
		ok      bool
	}{
		{"1.0.0", true}, {"v2", true}, {"1.0+build.5", true}, {"2026-12-02_1", true}, {strings.Repeat("1", 128), true},
		{strings.Repeat("1", 129), false}, {"-1", false}, {"1 0", false}, {"1/0", false},
	} {
		if err := CheckText(&Version{Version: tc.version}); (err == nil) != tc.ok {
			t.Errorf("version %q: %v, want ok=%v", tc.version, err, tc.ok)
		}
	}
}
