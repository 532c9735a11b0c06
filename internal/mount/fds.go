package mount

import (
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// CloseOnExecInherited marks every file descriptor above stderr close-on-exec.
// A Packer plugin inherits descriptors from its parent that Go does not mark;
// without this they leak into every program the build starts, including
// daemons left in the chroot, and push mmdebstrap's pipe descriptors past 9,
// which dash cannot redirect ("Bad fd number").
func CloseOnExecInherited() {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return
	}
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd <= 2 {
			continue
		}
		unix.CloseOnExec(fd)
	}
}
