package layer

import "strings"

// OverlayOptions is the overlayfs mount data for lowers (top layer first)
// with an upper and work dir, or a read-only view of lowers alone when
// upper is "". Renamed directories are copied rather than redirected, the
// index and metacopy stay off: every change lands in the upper dir as plain
// files, whiteouts and opaque directories, which is what an OCI layer can
// express.
func OverlayOptions(lowers []string, upper, work string) string {
	opts := []string{"lowerdir=" + strings.Join(lowers, ":")}
	if upper != "" {
		opts = append(opts, "upperdir="+upper, "workdir="+work)
	}
	opts = append(opts, "redirect_dir=off", "index=off", "metacopy=off")
	return strings.Join(opts, ",")
}
