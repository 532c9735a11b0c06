package chroot

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/strata-build/packer-plugin-strata/internal/apt"
	"github.com/strata-build/packer-plugin-strata/internal/dpkg"
)

// stepRemovePackages purges minimize.remove_packages in the chroot (apt
// runs there, so it comes before the teardown), refusing an Essential one
// without force.
//
// Uses cfg, root, aptIndexes and the communicator.
type stepRemovePackages struct{}

func (s *stepRemovePackages) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	cfg := configOf(state)
	m := cfg.Minimize
	if !*m.Enabled || len(m.RemovePackages) == 0 {
		return multistep.ActionContinue
	}
	ui := uiOf(state)
	pkgs, err := dpkg.ReadImage(buildOf(state).root)
	if err != nil {
		return halt(state, fmt.Errorf("minimize.remove_packages: %w", err))
	}
	installed := map[string]bool{}
	var essential []string
	for _, p := range pkgs {
		installed[p.Name] = true
		// apt treats itself as Important whatever its control file says.
		protected := p.Essential || p.Protected || p.Name == "apt"
		if protected && !m.Force && slices.Contains(m.RemovePackages, p.Name) {
			essential = append(essential, p.Name)
		}
	}
	if len(essential) > 0 {
		return halt(state, fmt.Errorf("minimize.remove_packages: %s is Essential or Protected (the system or apt needs it); remove it from the list, or set minimize.force = true", strings.Join(essential, ", ")))
	}
	var todo []string
	for _, r := range m.RemovePackages {
		if installed[r] {
			todo = append(todo, r)
		} else {
			ui.Message("minimize: " + r + " is not installed; nothing to remove")
		}
	}
	if len(todo) == 0 {
		return multistep.ActionContinue
	}
	// apt's own maintainer scripts remove /var/cache/apt and
	// /var/lib/apt/lists, where the shared package indexes are mounted:
	// take those down first (their lists are kept for the next build).
	if u := buildOf(state).aptIndexes; u != nil {
		if err := u.run(ui); err != nil {
			return halt(state, fmt.Errorf("minimize.remove_packages: taking down the shared package indexes: %w", err))
		}
	}
	ui.Say("Removing packages: " + strings.Join(todo, " "))
	args := []string{"purge", "--auto-remove"}
	if m.Force {
		args = append(args, "--allow-remove-essential")
	}
	var stdout, stderr apt.Output
	rc := &packersdk.RemoteCmd{Command: apt.Get(append(args, todo...)...), Stdout: &stdout, Stderr: &stderr}
	if err := rc.RunWithUi(ctx, state.Get(stateCommunicator).(packersdk.Communicator), ui); err != nil {
		return halt(state, fmt.Errorf("minimize.remove_packages: %w", err))
	}
	if rc.ExitStatus() != 0 {
		err := apt.Error("minimize.remove_packages", rc.ExitStatus(), stdout.String()+"\n"+stderr.String())
		if strings.Contains(err.Error(), "is Essential") {
			err = fmt.Errorf("%w\nset minimize.force = true to remove them anyway", err)
		}
		return halt(state, err)
	}
	return multistep.ActionContinue
}

func (s *stepRemovePackages) Cleanup(multistep.StateBag) {}
