package dpkg

import "regexp"

var (
	// A package name (lower case letters, digits, + - .), with an optional
	// :architecture.
	nameRe = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]+(:[a-z0-9-]+)?$`)
	// A version: an optional epoch, an upstream version starting with a
	// digit, an optional revision.
	versionRe = regexp.MustCompile(`^([0-9]+:)?[0-9][A-Za-z0-9.+~-]*(:[A-Za-z0-9.+~-]+)*$`)
)

// ValidName says whether s is a package name, optionally name:arch. Names
// that pass go into apt and dpkg command lines unquoted.
func ValidName(s string) bool { return nameRe.MatchString(s) }

// ValidVersion says whether s is a Debian version.
func ValidVersion(s string) bool { return versionRe.MatchString(s) }
