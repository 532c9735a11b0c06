package hint

import (
	"errors"
	"testing"
)

func TestCommandLines(t *testing.T) {
	for got, want := range map[string]string{
		Promote("base-os", "1.0.3", "staging"): "strata promote base-os@1.0.3 staging",
		Restore("base-os", "1.0.1"):            "strata restore base-os@1.0.1",
		Rollback("base-os", "production"):      "strata rollback base-os production",
		Versions("base-os"):                    "strata versions base-os",
		Channels("base-os"):                    "strata channels base-os",
		OutOfDate("app"):                       "strata lineage --out-of-date app",
		// Anything a shell would read otherwise is quoted.
		Command("rollback", "a b", "it's;$(x)"): `strata rollback 'a b' 'it'\''s;$(x)'`,
		Command("versions", ""):                 "strata versions ''",
	} {
		if got != want {
			t.Errorf("%q, want %q", got, want)
		}
	}
}

func TestErrorCarriesHint(t *testing.T) {
	base := errors.New("boom")
	err := With(base, "strata versions x")
	if !errors.Is(err, base) || err.Error() != "boom" || Of(err) != "strata versions x" || Of(base) != "" {
		t.Fatalf("%v %q", err, Of(err))
	}
}
