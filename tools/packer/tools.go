//go:build tools

// Package tools pins the Packer release that tests and examples run, so that
// `go build github.com/hashicorp/packer` yields the same bin/packer everywhere.
package tools

import _ "github.com/hashicorp/packer"
