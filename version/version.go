// Package version is the plugin's version, reported to Packer.
package version

import "github.com/hashicorp/packer-plugin-sdk/version"

var (
	Version           = "0.1.0"
	VersionPrerelease = ""
	VersionMetadata   = ""
	PluginVersion     = version.NewPluginVersion(Version, VersionPrerelease, VersionMetadata)
)
