// Package hint writes the strata command lines that messages tell people
// to run, in one place, so that every hint is a command the CLI takes (a
// test runs each one with bin/strata).
package hint

import (
	"errors"
	"strings"
)

// Promote points channel at name@version.
func Promote(name, version, channel string) string {
	return Command("promote", name+"@"+version, channel)
}

// Restore undoes the revocation of name@version.
func Restore(name, version string) string { return Command("restore", name+"@"+version) }

// Rollback moves channel of name back to the version before.
func Rollback(name, channel string) string { return Command("rollback", name, channel) }

// Versions lists the versions of name.
func Versions(name string) string { return Command("versions", name) }

// Images lists the images.
func Images() string { return Command("images") }

// History shows the history of channel of name.
func History(name, channel string) string { return Command("history", name, channel) }

// Channels lists the channels of name.
func Channels(name string) string { return Command("channels", name) }

// OutOfDate lists the channel heads of name built on a replaced ancestor.
func OutOfDate(name string) string { return Command("lineage", "--out-of-date", name) }

// Command is "strata" and args, each quoted for a POSIX shell when it
// needs it.
func Command(args ...string) string {
	q := []string{"strata"}
	for _, a := range args {
		q = append(q, quote(a))
	}
	return strings.Join(q, " ")
}

func quote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@%+=:,./_-") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Error is an error with what to do about it.
type Error struct {
	Err  error
	Hint string
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// With gives err a hint.
func With(err error, hint string) error { return &Error{Err: err, Hint: hint} }

// Of is err's hint, "" when it has none.
func Of(err error) string {
	var h *Error
	if errors.As(err, &h) {
		return h.Hint
	}
	return ""
}
