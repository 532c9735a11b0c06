package packages

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// sharedIndexesInfo is where strata-chroot describes the shared package
// indexes it mounted at /var/lib/apt/lists (on the build's /run, never in
// an image), and what it says.
const sharedIndexesInfo = "/run/strata/apt-indexes.json"

type sharedIndexes struct {
	Key     string    `json:"key"`
	Shared  bool      `json:"shared"`
	Checked time.Time `json:"checked"`
	Pinned  bool      `json:"pinned"`
}

// missingListsCommand prints each package list apt's current sources need
// that /var/lib/apt/lists lacks: apt-get indextargets names them all (with
// --no-release-info also those never fetched; optional ones, such as
// binary-all, left out), kept plain or compressed.
const missingListsCommand = `apt-get indextargets --no-release-info --format '$(FILENAME)' 'Created-By: Packages' 'Optional: no' | ` +
	`while read -r f; do for g in "$f" "$f".*; do [ -e "$g" ] && continue 2; done; echo "$f"; done`

// needUpdate decides, by the update option and what the state command
// read, whether to run apt-get update, and says why not when it does not.
func needUpdate(c *Config, st *imageState) (bool, string, error) {
	if c.Update == updateAlways {
		return true, "", nil
	}
	missing := st.missingLists
	if st.listsErr != "" {
		missing = append(missing, "("+st.listsErr+")")
	}
	if c.Update == updateNever {
		if len(missing) > 0 {
			return false, "", fmt.Errorf("update = \"never\", but apt has no package list for %s: there are no shared package indexes for these sources yet (the package cache makes them at the first build that runs apt-get update) and the image has none; set update = \"auto\" or run a build with update = \"always\" first", strings.Join(missing, ", "))
		}
		return false, "update = \"never\"", nil
	}
	if len(missing) > 0 {
		return true, "", nil
	}
	var info sharedIndexes
	if st.indexesInfo == "" || json.Unmarshal([]byte(st.indexesInfo), &info) != nil || !info.Shared {
		return true, "", nil // not strata-chroot's shared indexes: apt's own lists, of unknown age
	}
	key := info.Key
	if len(key) > 12 {
		key = key[:12]
	}
	if info.Pinned {
		return false, fmt.Sprintf("the shared copy %s is pinned (package_cache offline or snapshot)", key), nil
	}
	if age := time.Since(info.Checked); !info.Checked.IsZero() && age < c.updateMaxAge {
		return false, fmt.Sprintf("the shared copy %s was checked against the mirror %s ago (update_max_age %s)", key, age.Round(time.Second), c.updateMaxAge), nil
	}
	return true, "", nil
}
