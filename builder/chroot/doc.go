// Package chroot is the strata-chroot builder: it makes a root file system
// (mmdebstrap, a tarball, or a parent image's layers under an overlay),
// mounts it with the package cache, runs Packer's provisioners in the
// chroot, minimizes it, tears it down, commits the overlay's upper dir as
// a layer and exports the formats asked for.
//
// Where things are: config.go is Config and Prepare's skeleton, which calls
// one prepare per block, each beside its type: config_bootstrap.go,
// config_package_cache.go, config_minimize.go, config_mounts.go
// (chroot_mounts), config_contents.go (allowed/denied packages, setuid),
// config_outputs.go (formats, ext4, squashfs, OCI); config_paths.go holds
// the rules for the build's directories as written, hostdirs.go checks them
// again where they lead when the build starts, config_templates.go checks
// the template fields options use, and compat.go names other builders'
// options. Each step of the build is a step_*.go file whose
// Cleanup undoes exactly what its Run did.
//
// What it must never do:
//   - touch the host (create, mount, run) before Prepare and the start-time
//     host check passed; bad input fails with every problem at once, each
//     naming its option and the fix;
//   - trust the image: its symlinks, /tmp and dpkg database may be hostile,
//     so every path in it is resolved inside the image root at the moment
//     of use (internal/inroot), never followed out to the host;
//   - trust other local users: the store, work dir and package cache must
//     be closed to them (internal/storeroot), and the package cache serves
//     only this build;
//   - delete, kill or unmount anything this build did not make itself
//     (recorded in the work dir's ledger, internal/mount), nor leave a mount
//     or a chroot process behind on success, failure or interruption;
//   - leave a half-written layer or output where a reader can see it.
package chroot
