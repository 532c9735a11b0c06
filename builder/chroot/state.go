package chroot

import (
	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/strata-build/packer-plugin-strata/internal/inroot"
	"github.com/strata-build/packer-plugin-strata/internal/mount"
	"github.com/strata-build/packer-plugin-strata/layer"
)

// State bag keys. Each step's comment says which it reads and writes.
const (
	stateConfig = "config" // *Config
	stateUI     = "ui"     // packersdk.Ui
	stateHook   = "hook"   // packersdk.Hook
	stateError  = "error"  // error, for Packer
	// stateLedger is the work dir's *mount.Ledger: every mount and host
	// program group of the build, recorded ahead.
	stateLedger = "strata_ledger"
	// stateMountPath is the image root on the host (string), set once the
	// root is mounted there.
	stateMountPath = "mount_path"
	// stateRoot is the mounted image root, held open (*inroot.Root).
	stateRoot = "strata_root"
	// stateUndos is what stepEarlyCleanup takes back ([]*undo).
	stateUndos = "strata_undos"
	// stateLayers is the store's *layer.Store.
	stateLayers = "strata_layers"
	// stateRootfs is the image root's own mount (*rootfsMount), from the
	// root file system step until the commit takes it down.
	stateRootfs = "strata_rootfs"
	// stateImage is the committed *layer.Image.
	stateImage = "strata_image"
	// statePackageCache is the build's *pkgcache.Server, when the cache is on.
	statePackageCache = "strata_package_cache"
	// stateArtifact is the build's *Artifact.
	stateArtifact = "artifact"
	// stateCommunicator is the key Packer's provisioners read.
	stateCommunicator = "communicator"
)

func configOf(state multistep.StateBag) *Config       { return state.Get(stateConfig).(*Config) }
func uiOf(state multistep.StateBag) packersdk.Ui      { return state.Get(stateUI).(packersdk.Ui) }
func ledgerOf(state multistep.StateBag) *mount.Ledger { return state.Get(stateLedger).(*mount.Ledger) }
func rootOf(state multistep.StateBag) *inroot.Root    { return state.Get(stateRoot).(*inroot.Root) }
func layersOf(state multistep.StateBag) *layer.Store  { return state.Get(stateLayers).(*layer.Store) }
