package packages

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
)

// TestUpdateDecision runs the provisioner against the pretend system with
// each update mode and each state of the shared indexes, and checks
// whether apt-get update ran.
func TestUpdateDecision(t *testing.T) {
	info := func(age time.Duration, pinned bool) string {
		return fmt.Sprintf(`{"key":"0123456789abcdef","shared":true,"checked":%q,"pinned":%v}`, time.Now().Add(-age).UTC().Format(time.RFC3339Nano), pinned)
	}
	missing := []string{"/var/lib/apt/lists/mirror_debian_dists_bookworm_main_binary-amd64_Packages"}
	for _, tc := range []struct {
		name, update, maxAge string
		missing              []string
		info                 string
		wantUpdate           bool
		wantErr              string
	}{
		{name: "auto, fresh shared copy", update: "auto", info: info(time.Minute, false)},
		{name: "auto, stale shared copy", update: "auto", info: info(2*time.Hour, false), wantUpdate: true},
		{name: "auto, max age 3h", update: "auto", maxAge: "3h", info: info(2*time.Hour, false)},
		{name: "auto, pinned", update: "auto", info: info(100*time.Hour, true)},
		{name: "auto, a source without lists", update: "auto", info: info(time.Minute, false), missing: missing, wantUpdate: true},
		{name: "auto, apt's own lists (no strata-chroot)", update: "auto", wantUpdate: true},
		{name: "always", update: "always", info: info(time.Minute, false), wantUpdate: true},
		{name: "never, lists there", update: "never"},
		{name: "never, no lists", update: "never", missing: missing, wantErr: `update = "never", but apt has no package list for ` + missing[0]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake()
			f.mirror["jq"] = []string{"1.6"}
			f.missingLists, f.indexesInfo = tc.missing, tc.info
			raw := map[string]interface{}{"install": []string{"jq"}, "update": tc.update}
			if tc.maxAge != "" {
				raw["update_max_age"] = tc.maxAge
			}
			var p Provisioner
			if err := p.Prepare(raw); err != nil {
				t.Fatal(err)
			}
			err := p.Provision(context.Background(), packersdk.TestUi(t), f, nil)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			updated := false
			for _, c := range f.commands {
				if aptArgsRe.MatchString(c) && strings.Fields(aptArgsRe.FindStringSubmatch(c)[1])[0] == "update" {
					updated = true
				}
			}
			if updated != tc.wantUpdate {
				t.Errorf("apt-get update ran: %v, want %v (commands %q)", updated, tc.wantUpdate, f.commands)
			}
		})
	}
}
