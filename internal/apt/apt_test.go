package apt

import (
	"strings"
	"testing"
)

func TestAptProblems(t *testing.T) {
	cases := []struct {
		out  string
		want []string
	}{
		{"Reading package lists...\nE: Unable to locate package nosuchpkg\n", []string{"package nosuchpkg is unknown"}},
		{"E: Version '0.1' for 'bash' was not found\n", []string{"bash version 0.1 is not available"}},
		{"E: Release 'nosuchrel' for 'bash' was not found\n", []string{"bash: release nosuchrel is not available"}},
		{"E: Package 'foo' has no installation candidate\n", []string{"package foo is unknown"}},
		{"Some packages could not be installed.\nThe following packages have unmet dependencies:\n" +
			" app : Depends: libmissing but it is not installable\n" +
			"       Depends: libold (>= 2) but 1.0 is to be installed\n" +
			" other : Conflicts: app but 1.0 is to be installed\n" +
			"E: Unable to correct problems, you have held broken packages.\n",
			[]string{"dependency conflict: app Depends: libmissing but it is not installable",
				"dependency conflict: app Depends: libold (>= 2) but 1.0 is to be installed",
				"dependency conflict: other Conflicts: app but 1.0 is to be installed"}},
		{"WARNING: The following essential packages will be removed.\nThis should NOT be done unless you know exactly what you are doing!\n  bash\n" +
			"0 upgraded, 0 newly installed, 1 to remove and 0 not upgraded.\nE: Removing essential system-critical packages is not permitted. This might break the system.\n",
			[]string{"bash is Essential"}},
		{"E: Essential packages were removed and -y was used without --allow-remove-essential.\n" +
			"WARNING: The following essential packages will be removed.\nThis should NOT be done unless you know exactly what you are doing!\n" +
			"  apt adduser (due to apt) gpgv (due to apt) libapt-pkg6.0 (due to apt)\n  libstdc++6 (due to apt)\n0 upgraded, 0 newly installed, 14 to remove and 0 not upgraded.\n",
			[]string{"apt is Essential", "adduser (due to apt) is Essential", "libstdc++6 (due to apt) is Essential"}},
		{"E: Failed to fetch http://127.0.0.1:3142/pool/main/h/hello_2.0_all.deb  404  Not Found [IP: 127.0.0.1 3142]\n",
			[]string{"could not download http://127.0.0.1:3142/pool/main/h/hello_2.0_all.deb: 404  Not Found"}},
		{"E: Sub-process /usr/bin/dpkg returned an error code (1)\n", []string{"Sub-process /usr/bin/dpkg returned an error code (1)"}},
	}
	for _, c := range cases {
		err := Error("install", 100, c.out)
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("for %q: %v lacks %q", c.out, err, w)
			}
		}
	}
	if err := Error("install", 100, "no E: lines\n"); err.Error() != "install: apt-get exited 100" {
		t.Errorf("bare failure: %v", err)
	}
}

func TestGetIsNonInteractive(t *testing.T) {
	c := Get("install", "jq")
	for _, want := range []string{"DEBIAN_FRONTEND=noninteractive", "apt-get -y -q", "--force-confold", "DPkg::Lock::Timeout=", " install jq"} {
		if !strings.Contains(c, want) {
			t.Errorf("%q lacks %q", c, want)
		}
	}
}
