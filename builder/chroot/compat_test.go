package chroot

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/packer-plugin-sdk/rpc"
	"github.com/zclconf/go-cty/cty"
)

// sampleValue is a value of t as a JSON template (or Packer's RPC) hands it.
func sampleValue(t cty.Type) interface{} {
	switch {
	case t == cty.String:
		return "x"
	case t == cty.Bool:
		return true
	case t == cty.Number:
		return 8
	case t.IsMapType():
		return map[string]interface{}{"k": "v"}
	case t.Equals(lists):
		return []interface{}{[]interface{}{"tmpfs", "tmpfs", "/mnt/x"}}
	case t.IsListType():
		return []interface{}{"x"}
	}
	panic(t.FriendlyName())
}

// Every foreign option, given in its attribute or block form, fails
// Prepare with its own hint, naming the option and its builder.
func TestForeignOptionHints(t *testing.T) {
	h := withHostSources(t, "deb http://mirror.test/debian bookworm main\n")
	own := (&Config{}).FlatMapstructure().HCL2Spec()
	seen := map[string]bool{}
	for _, o := range foreignOptions {
		if _, clash := own[o.name]; clash {
			t.Errorf("%s is strata-chroot's own option", o.name)
		}
		if seen[o.name] {
			t.Errorf("%s is in the table twice", o.name)
		}
		seen[o.name] = true
		if (o.instead == "") == (o.why == "") {
			t.Errorf("%s: give exactly one of instead and why", o.name)
		}
		var forms []interface{}
		if o.typ != cty.NilType {
			forms = append(forms, sampleValue(o.typ))
		}
		if o.attrs != nil {
			block := map[string]interface{}{}
			for a, at := range o.attrs {
				block[a] = sampleValue(at)
			}
			forms = append(forms, []interface{}{block})
		}
		for _, v := range forms {
			raw := baseConfig(t)
			raw[o.name] = v
			c := Config{host: h}
			_, err := c.Prepare(raw)
			if err == nil {
				t.Errorf("%s = %v: accepted", o.name, v)
				continue
			}
			want := o.instead
			if o.why != "" {
				want = "has no meaning here because " + o.why
			}
			if o.value != nil {
				want = o.value(v)
			}
			for _, s := range []string{o.name + " is an option of " + o.builders, want} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("%s = %v: the error lacks %q:\n%v", o.name, v, s, err)
				}
			}
		}
	}
	// Unset (null, or no blocks) is not given.
	raw := baseConfig(t)
	raw["ami_name"] = nil
	raw["tag"] = []interface{}{}
	c := Config{host: h}
	if _, err := c.Prepare(raw); err != nil {
		t.Errorf("unset foreign options: %v", err)
	}
}

func TestResolvConfHint(t *testing.T) {
	for v, want := range map[string]string{
		"off":       `resolv_conf = "none"`,
		"delete":    `resolv_conf = "copy-host": the host's file is there during the build, and afterwards the image's own is put back`,
		"copy-host": `resolv_conf = "copy-host"`,
		"bind-host": `resolv_conf = "bind-host"`,
	} {
		if got := resolvConfHint(v); !strings.HasPrefix(got, want) {
			t.Errorf("resolv-conf %q: %s", v, got)
		}
	}
}

// decodeHCL decodes a source block's body with the builder's schema, as
// Packer does, and returns its diagnostics' text on failure.
func decodeHCL(t *testing.T, body string) (cty.Value, string) {
	t.Helper()
	f, diags := hclparse.NewParser().ParseHCL([]byte(body), "t.pkr.hcl")
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	v, diags := hcldec.Decode(f.Body, configSpec(), &hcl.EvalContext{})
	if diags.HasErrors() {
		return cty.NilVal, diags.Error()
	}
	return v, ""
}

// The HCL list form of chroot_mounts is accepted beside the blocks; other
// builders' options reach Prepare (and their hint) in both HCL forms; the
// schema crosses Packer's plugin protocol.
func TestHCLSchema(t *testing.T) {
	h := withHostSources(t, "deb http://mirror.test/debian bookworm main\n")
	store := t.TempDir()
	head := "packer_build_name = \"test\"\nstore_dir = \"" + store + "\"\nbootstrap {\n  suite = \"bookworm\"\n}\n"

	v, diags := decodeHCL(t, head+`chroot_mounts = [["tmpfs", "tmpfs", "/var/tmp"], ["proc", "proc", "/proc"]]
chroot_mounts {
  type   = "tmpfs"
  target = "/mnt/scratch"
}
`)
	if diags != "" {
		t.Fatalf("the list form is refused: %s", diags)
	}
	c := Config{host: h}
	warnings, err := c.Prepare(v)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.ChrootMounts) != 2 || c.ChrootMounts[0].Target != "/mnt/scratch" || c.ChrootMounts[1].Target != "/var/tmp" || c.ChrootMounts[1].Type != "tmpfs" {
		t.Errorf("chroot_mounts %+v", c.ChrootMounts)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "/proc is mounted by strata-chroot itself") {
		t.Errorf("warnings %v", warnings)
	}

	for body, want := range map[string]string{
		`ami_name = "app-{{timestamp}}"`:                                                       "strata-catalog post-processor's image_name",
		"source_ami_filter {\n  owners = [\"self\"]\n  most_recent = true\n}":                  `data "strata-image"`,
		`additional_chroot_mounts = [["bind", "/srv", "/srv"]]`:                                "use chroot_mounts",
		"additional_chroot_mounts {\n  mount_type = \"tmpfs\"\n  destination_path = \"/x\"\n}": "use chroot_mounts",
		`resolv-conf = "off"`:                 `write resolv_conf = "none"`,
		`image_chroot_env = ["A=b"]`:          "environment = { NAME",
		`qemu_binary = "qemu-aarch64-static"`: "copies no emulator",
		`region = "eu-west-1"`:                "talks to no cloud API",
	} {
		v, diags := decodeHCL(t, head+body+"\n")
		if diags != "" {
			t.Errorf("%s: refused by the schema: %s", body, diags)
			continue
		}
		c := Config{host: h}
		if _, err := c.Prepare(v); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want %q", body, err, want)
		}
	}
	for k, s := range configSpec() {
		if _, err := rpc.ToProto(s); err != nil {
			t.Errorf("%s cannot cross the plugin protocol: %v", k, err)
		}
	}
}

// A template field the option does not have is an error naming the option,
// the field, and the fields there are.
func TestTemplateFields(t *testing.T) {
	h := withHostSources(t, "deb http://mirror.test/debian bookworm main\n")
	for name, c := range map[string]struct {
		set  func(m map[string]interface{})
		want []string
	}{
		"hook device": {func(m map[string]interface{}) { m["pre_mount_commands"] = []string{"mkfs.ext4 {{ .Device }}"} },
			[]string{"pre_mount_commands[0]: the template field {{ .Device }} does not exist here", "no volume, device", "has {{ .MountPath }}"}},
		"wrapper": {func(m map[string]interface{}) { m["command_wrapper"] = "{{ .Chroot }} {{ .Command }}" },
			[]string{"command_wrapper: the template field {{ .Chroot }}", "has {{ .Command }} and {{ .MountPath }}"}},
		"mount_path device": {func(m map[string]interface{}) { m["mount_path"] = "/mnt/packer-amazon-chroot-volumes/{{.Device}}" },
			[]string{"mount_path: the template field {{ .Device }}", "mount_path has no template fields"}},
		"label": {func(m map[string]interface{}) { m["labels"] = map[string]interface{}{"who": "{{ .Author }}"} },
			[]string{"labels.who: the template field {{ .Author }}"}},
		"mount target": {func(m map[string]interface{}) {
			m["chroot_mounts"] = []interface{}{map[string]interface{}{"type": "tmpfs", "target": "/mnt/{{ $.Dir }}"}}
		}, []string{"chroot_mounts[0].target: the template field {{ .Dir }}"}},
	} {
		raw := baseConfig(t)
		c.set(raw)
		cfg := Config{host: h}
		_, err := cfg.Prepare(raw)
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: the error lacks %q:\n%v", name, w, err)
			}
		}
	}
	// Fields that exist, and Packer's functions, are fine.
	raw := baseConfig(t)
	raw["pre_mount_commands"] = []string{"echo {{ .MountPath }} {{ build_name }}"}
	raw["command_wrapper"] = "env X={{ build_name }} {{ .Command }}"
	raw["mount_path"] = filepath.Join(t.TempDir(), "{{ build_name }}")
	cfg := Config{host: h}
	if _, err := cfg.Prepare(raw); err != nil {
		t.Fatal(err)
	}
	if filepath.Base(cfg.MountPath) != "test" {
		t.Errorf("mount_path %s", cfg.MountPath)
	}
}

// HCL configurations reach the template hash as their values: two
// templates that differ have different hashes (a cty.Value marshals to {}).
func TestTemplateHashOfHCL(t *testing.T) {
	h := withHostSources(t, "deb http://mirror.test/debian bookworm main\n")
	store := t.TempDir()
	hash := func(label string) string {
		v, diags := decodeHCL(t, "packer_build_name = \"test\"\nstore_dir = \""+store+"\"\nbootstrap {\n  suite = \"bookworm\"\n}\nlabels = { a = \""+label+"\" }\n")
		if diags != "" {
			t.Fatal(diags)
		}
		c := Config{host: h}
		if _, err := c.Prepare(v); err != nil {
			t.Fatal(err)
		}
		return c.configHash
	}
	if a, b := hash("1"), hash("2"); a == b || a != hash("1") {
		t.Errorf("template hashes %s %s", a, b)
	}
}
