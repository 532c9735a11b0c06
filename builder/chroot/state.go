package chroot

import (
	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/strata-build/packer-plugin-strata/internal/inroot"
	"github.com/strata-build/packer-plugin-strata/internal/mount"
	"github.com/strata-build/packer-plugin-strata/layer"
	"github.com/strata-build/packer-plugin-strata/pkgcache"
)

// The state bag holds what Packer's SDK reads and writes (besides its own
// cancelled and halted flags), and the build's own state under stateBuild.
const (
	stateUI           = "ui"           // packersdk.Ui
	stateHook         = "hook"         // packersdk.Hook
	stateError        = "error"        // error, for Packer
	stateCommunicator = "communicator" // packersdk.Communicator, for the provisioners
	// stateGeneratedData holds the build.* variables: packerbuilderdata's
	// GeneratedData and StepProvision keep them under this key (the SDK
	// names it nowhere as a constant).
	stateGeneratedData = "generated_data"
	// stateBuild is the build's *buildState.
	stateBuild = "strata_build"
)

// buildState is what the steps hand each other, one field a thing; each
// field says which step sets it. A step's own bookkeeping for its Cleanup
// stays in the step.
type buildState struct {
	cfg *Config
	// host makes every change to the build host outside the image and the
	// store: mounts, unmounts, host programs, killing chroot processes.
	host host
	// ledger records every mount and host program group of the build,
	// ahead (stepWorkDir).
	ledger *mount.Ledger
	// layers is the layer store (stepStore).
	layers *layer.Store
	// cache is the build's package cache, nil when it is off
	// (stepPackageCache).
	cache *pkgcache.Server
	// rootfs is the image root's own mount at mount_path (stepRootfs), until
	// stepCommit takes it down.
	rootfs *rootfsMount
	// root is the writable image root, held open while rootfs is mounted
	// (stepRootfs); the rootfs' unmount closes it and sets it nil.
	root *inroot.Root
	// mountPath is mount_path while the image root is mounted there
	// (stepRootfs); empty before and after its unmount.
	mountPath string
	// undos are what stepMount, stepResolvConf and stepPolicyRcD take back,
	// in the order they ran; earlyCleanup runs them before the commit.
	undos []*undo
	// aptIndexes is the undo of the shared package indexes' overlays
	// (stepAptIndexes), which stepRemovePackages runs early.
	aptIndexes *undo
	// image is the committed image (stepCommit).
	image *layer.Image
	// view is the committed image mounted read-only for the export
	// (stepImageView).
	view *inroot.Root
	// artifact is the build's result (stepExport).
	artifact *Artifact
}

func buildOf(state multistep.StateBag) *buildState { return state.Get(stateBuild).(*buildState) }
func configOf(state multistep.StateBag) *Config    { return buildOf(state).cfg }
func uiOf(state multistep.StateBag) packersdk.Ui   { return state.Get(stateUI).(packersdk.Ui) }
