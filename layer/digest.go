package layer

import "strings"

// ShortDigest is the first 12 hex digits of a sha256 digest ("sha256:" or
// not), as people read image IDs, layer digests and keys in messages.
func ShortDigest(d string) string {
	d = strings.TrimPrefix(d, "sha256:")
	if len(d) > 12 {
		return d[:12]
	}
	return d
}
