// Package emulated holds the strata-chroot builder's end-to-end tests whose
// time goes to emulation: disks booted under QEMU's TCG (TestAccDisk,
// TestAccDiskArm64) and a foreign architecture built through qemu-user
// (TestAccArchitecture). Each keeps about one core busy for minutes while
// builder/chroot's serial end-to-end tests leave one idle much of the time;
// in a package of their own, go test runs them beside those (it runs test
// packages in parallel, a package's serial tests one by one). The package
// has no code of its own: its tests drive bin/packer through
// internal/acctest, as builder/chroot's do.
package emulated
