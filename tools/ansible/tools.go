//go:build tools

// Package tools pins packer-plugin-ansible, whose ansible provisioner drives
// Ansible over Packer's SSH proxy onto the chroot communicator in the
// end-to-end tests: `go build github.com/hashicorp/packer-plugin-ansible`.
package tools

import _ "github.com/hashicorp/packer-plugin-ansible"
