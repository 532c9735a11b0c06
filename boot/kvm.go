package boot

import (
	"context"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/strata-build/packer-plugin-strata/internal/hostexec"
)

// probes caches ProbeKVM per QEMU and firmware for the process's life.
var probes sync.Map

// ProbeKVM boots the firmware alone under KVM for a few seconds and says
// whether it got as far as its boot manager. /dev/kvm opening says
// nothing: on some hosts OVMF dies under it with "KVM internal error".
// The answer is cached per process.
func ProbeKVM(ctx context.Context, qemu, code, vars string, t hostexec.Tracker) bool {
	key := qemu + "\x00" + code
	if v, ok := probes.Load(key); ok {
		return v.(bool)
	}
	ok := probeKVM(ctx, qemu, code, vars, t)
	if ctx.Err() == nil {
		probes.Store(key, ok)
	}
	return ok
}

// probeTimeout bounds the probe: OVMF reaches its boot manager in about a
// second under KVM.
var probeTimeout = 10 * time.Second

var probeOK = regexp.MustCompile(`BdsDxe|UEFI Interactive Shell|Shell>`)

func probeKVM(ctx context.Context, qemu, code, vars string, t hostexec.Tracker) bool {
	if _, err := os.Stat("/dev/kvm"); err != nil && qemu == DefaultQEMU {
		return false
	}
	tmp, err := os.MkdirTemp("", "strata-kvmprobe-")
	if err != nil {
		return false
	}
	defer os.RemoveAll(tmp)
	args, err := qemuArgs(machines["amd64"], code, vars, tmp, AccelKVM, 128)
	if err != nil {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	v, err := startVM(qemu, args, tmp, t)
	if err != nil {
		return false
	}
	defer v.stop()
	for {
		select {
		case l, ok := <-v.lines:
			if !ok || strings.Contains(l, "KVM internal error") {
				return false
			}
			if probeOK.MatchString(l) {
				return true
			}
		case <-ctx.Done():
			return false
		}
	}
}
