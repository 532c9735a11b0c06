// Package bytesize formats byte counts for people: the one place the
// messages of the builder, the exports and the CLI take their units from.
package bytesize

import "fmt"

// Human formats n in binary units (B, KiB, MiB, ...), one decimal.
func Human(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// MB formats n in decimal megabytes, one decimal, whatever its size: the
// unit of du -B MB and of image sizes as registries print them, which
// minimize's report is compared with (docs/builders/chroot.mdx).
func MB(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/1e6) }
