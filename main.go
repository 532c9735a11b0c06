// Command packer-plugin-strata is the Packer plugin binary: it registers
// the strata-chroot builder, the strata-packages provisioner, the
// strata-catalog and strata-test post-processors and the strata-image data source with
// Packer's plugin server. It holds no logic of its own.
package main

import (
	"fmt"
	"os"

	"github.com/hashicorp/packer-plugin-sdk/plugin"

	"github.com/strata-build/packer-plugin-strata/builder/chroot"
	"github.com/strata-build/packer-plugin-strata/datasource/image"
	catalogpp "github.com/strata-build/packer-plugin-strata/post-processor/catalog"
	testpp "github.com/strata-build/packer-plugin-strata/post-processor/test"
	"github.com/strata-build/packer-plugin-strata/provisioner/packages"
	"github.com/strata-build/packer-plugin-strata/version"
)

func main() {
	pps := plugin.NewSet()
	pps.RegisterBuilder("chroot", new(chroot.Builder))
	pps.RegisterProvisioner("packages", new(packages.Provisioner))
	pps.RegisterPostProcessor("catalog", new(catalogpp.PostProcessor))
	pps.RegisterPostProcessor("test", new(testpp.PostProcessor))
	pps.RegisterDatasource("image", new(image.Datasource))
	pps.SetVersion(version.PluginVersion)
	if err := pps.Run(); err != nil {
		fmt.Fprintln(os.Stderr, err.Error())
		os.Exit(1)
	}
}
