package layer

import "strings"

// OverlayOptions is the overlayfs mount data for lowers (top layer first)
// with an upper and work dir, or a read-only view of lowers alone when
// upper is "". Renamed directories are copied rather than redirected, the
// index and metacopy stay off: every change lands in the upper dir as plain
// files, whiteouts and opaque directories, which is what an OCI layer can
// express.
func OverlayOptions(lowers []string, upper, work string) string {
	esc := make([]string, len(lowers))
	for i, l := range lowers {
		esc[i] = overlayEscaper.Replace(l)
	}
	opts := []string{"lowerdir=" + strings.Join(esc, ":")}
	if upper != "" {
		opts = append(opts, "upperdir="+overlayEscaper.Replace(upper), "workdir="+overlayEscaper.Replace(work))
	}
	opts = append(opts, "redirect_dir=off", "index=off", "metacopy=off")
	return strings.Join(opts, ",")
}

// VolatileOverlayOptions is OverlayOptions for an upper dir nobody keeps
// as the overlay leaves it: mounted volatile, fsync inside it (dpkg's,
// after every file it unpacks) and its unmount (which otherwise syncs the
// whole file system, every other writer's data included) write nothing
// out. Whoever keeps the upper dir syncs it itself (Commit does).
func VolatileOverlayOptions(lowers []string, upper, work string) string {
	return "volatile," + OverlayOptions(lowers, upper, work)
}

// overlayEscaper escapes what overlayfs would otherwise read as separators
// in a path: a comma (between options), a colon (between lower dirs) and
// the backslash itself. A store or work dir may contain either.
var overlayEscaper = strings.NewReplacer(`\`, `\\`, ",", `\,`, ":", `\:`)
