package chroot

// Template fields in options: each option may use only the fields it is
// rendered with, and a field another builder has (`{{ .Device }}`) is an
// error naming the option and the fields there are.

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"text/template/parse"
)

// Template fields: hooks and command_wrapper are rendered with hookData;
// every other option is rendered once, in Prepare, with no data at all.
var (
	hookFields    = []string{"MountPath"}
	wrapperFields = []string{"Command", "MountPath"}
	// Fields other builders' templates have, and why there are none here.
	foreignFields = map[string]string{
		"Device":     noDevice,
		"FullDevice": noDevice,
		"Partition":  noDevice,
		"SourceAMI":  "the image's parent is the parent option",
	}
)

// templateFields lists the data fields a Go template refers to ({{ .X }},
// {{ $.X }}), sorted; nil when s is no template or does not parse (the
// render reports that).
func templateFields(s string) []string {
	if !strings.Contains(s, "{{") {
		return nil
	}
	tree := parse.New("t")
	tree.Mode = parse.SkipFuncCheck
	if _, err := tree.Parse(s, "", "", map[string]*parse.Tree{}); err != nil {
		return nil
	}
	seen := map[string]bool{}
	var walk func(parse.Node)
	walk = func(n parse.Node) {
		switch n := n.(type) {
		case *parse.ListNode:
			if n != nil {
				for _, c := range n.Nodes {
					walk(c)
				}
			}
		case *parse.ActionNode:
			walk(n.Pipe)
		case *parse.PipeNode:
			if n != nil {
				for _, c := range n.Cmds {
					walk(c)
				}
			}
		case *parse.CommandNode:
			for _, a := range n.Args {
				walk(a)
			}
		case *parse.FieldNode:
			seen[n.Ident[0]] = true
		case *parse.VariableNode:
			if len(n.Ident) > 1 && n.Ident[0] == "$" {
				seen[n.Ident[1]] = true
			}
		case *parse.ChainNode:
			walk(n.Node)
		case *parse.IfNode:
			walk(n.Pipe)
			walk(n.List)
			walk(n.ElseList)
		case *parse.RangeNode:
			walk(n.Pipe)
			walk(n.List)
			walk(n.ElseList)
		case *parse.WithNode:
			walk(n.Pipe)
			walk(n.List)
			walk(n.ElseList)
		case *parse.TemplateNode:
			walk(n.Pipe)
		}
	}
	walk(tree.Root)
	fields := make([]string, 0, len(seen))
	for f := range seen {
		fields = append(fields, f)
	}
	sort.Strings(fields)
	return fields
}

// unknownFields is the error for the fields of tmpl not in have, or "".
func unknownFields(opt, tmpl string, have []string) string {
	var bad []string
	var why []string
	for _, f := range templateFields(tmpl) {
		if !slices.Contains(have, f) {
			bad = append(bad, "{{ ."+f+" }}")
			if w, ok := foreignFields[f]; ok {
				why = append(why, "{{ ."+f+" }}: "+w)
			}
		}
	}
	if len(bad) == 0 {
		return ""
	}
	msg := fmt.Sprintf("%s: the template field %s does not exist here", opt, strings.Join(bad, " and "))
	if len(why) > 0 {
		msg += " (" + strings.Join(why, "; ") + ")"
	}
	if len(have) == 0 {
		return msg + ". " + opt + " has no template fields: only Packer's functions ({{ build_name }}, {{ timestamp }}, ...) and user variables"
	}
	var names []string
	for _, f := range have {
		names = append(names, "{{ ."+f+" }}")
	}
	return msg + ". " + opt + " has " + strings.Join(names, " and ") + ", besides Packer's functions and user variables"
}

// checkRawTemplates refuses a template field in any option rendered without
// data (all but the hooks and command_wrapper): Packer would render it as
// "<no value>", and a mount_path of ".../{{ .Device }}" would make a
// directory of that name.
func checkRawTemplates(raws []interface{}, add func(string, ...interface{})) {
	var walk func(opt string, v interface{})
	walk = func(opt string, v interface{}) {
		switch t := v.(type) {
		case string:
			if msg := unknownFields(opt, t, nil); msg != "" {
				add("%s", msg)
			}
		case []interface{}:
			for i, x := range t {
				walk(fmt.Sprintf("%s[%d]", opt, i), x)
			}
		case []string:
			for i, x := range t {
				walk(fmt.Sprintf("%s[%d]", opt, i), x)
			}
		case map[string]interface{}:
			for _, k := range sortedKeys(t) {
				walk(opt+"."+k, t[k])
			}
		case map[string]string:
			for _, k := range sortedKeys(t) {
				walk(opt+"."+k, t[k])
			}
		}
	}
	for _, raw := range raws {
		m, ok := raw.(map[string]interface{})
		if !ok {
			continue
		}
		for _, k := range sortedKeys(m) {
			if hookOption(k) || strings.HasPrefix(k, "packer_") {
				continue
			}
			walk(k, m[k])
		}
	}
}

// hookOption says whether opt is rendered at run time with hookData.
func hookOption(opt string) bool {
	return slices.Contains(renderedLater, opt)
}

// renderedLater are the options Prepare does not render: they are
// rendered at run time with hookData.
var renderedLater = []string{"pre_mount_commands", "post_mount_commands", "pre_unmount_commands", "command_wrapper"}

// checkTemplates checks the hook and wrapper templates: only the fields
// they have, and they render with the build's own template context (user
// variables, build_name, ...) and sample data.
func (c *Config) checkTemplates(add func(string, ...interface{})) {
	for _, t := range []struct {
		opt  string
		list []string
	}{{"pre_mount_commands", c.PreMountCommands}, {"post_mount_commands", c.PostMountCommands}, {"pre_unmount_commands", c.PreUnmountCommands}} {
		for i, cmd := range t.list {
			opt := fmt.Sprintf("%s[%d]", t.opt, i)
			if msg := unknownFields(opt, cmd, hookFields); msg != "" {
				add("%s", msg)
			} else if _, err := c.render(cmd, hookData{MountPath: "/x"}); err != nil {
				add("%s: bad template %q: %v", opt, cmd, err)
			}
		}
	}
	if msg := unknownFields("command_wrapper", c.CommandWrapper, wrapperFields); msg != "" {
		add("%s", msg)
		return
	}
	const probe = "strata-probe-command"
	out, err := c.render(c.CommandWrapper, hookData{MountPath: "/x", Command: probe})
	switch {
	case err != nil:
		add("command_wrapper: bad template %q: %v", c.CommandWrapper, err)
	case !strings.Contains(out, probe):
		add("command_wrapper: %q does not use {{ .Command }}, so every command would be dropped; write it around {{ .Command }}, such as \"sudo {{ .Command }}\"", c.CommandWrapper)
	}
}
