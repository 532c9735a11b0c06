//go:build tools

package main

// packer-sdc generates the HCL2 specs and docs; pinning it here builds it at
// the SDK version the plugin uses.
import _ "github.com/hashicorp/packer-plugin-sdk/cmd/packer-sdc"
