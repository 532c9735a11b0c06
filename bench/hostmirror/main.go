// Command hostmirror prints the build host's Debian mirror as strata-chroot
// picks it, so benchmarks give mmdebstrap the very same mirror.
package main

import (
	"fmt"
	"os"

	"github.com/strata-build/packer-plugin-strata/pkgcache"
)

func main() {
	m, err := pkgcache.HostMirror("/")
	if err != nil || m == "" {
		fmt.Fprintln(os.Stderr, "no Debian mirror in the host's apt sources:", err)
		os.Exit(1)
	}
	fmt.Println(m)
}
