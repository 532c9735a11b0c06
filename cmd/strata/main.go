// Command strata is the command line over the catalog: list images and
// versions, promote, roll back, revoke, trace lineage, diff and collect.
//
// Exit codes: 0 done, 1 failed, 2 bad usage or input, 3 not found (the
// catalog itself included), 4 refused (conflict, revoked target, nothing to
// roll back to, a channel policy). Under --json an error is also a JSON object on stdout.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/strata-build/packer-plugin-strata/catalog"
	_ "github.com/strata-build/packer-plugin-strata/catalog/postgres"
	_ "github.com/strata-build/packer-plugin-strata/catalog/sqlite"
	"github.com/strata-build/packer-plugin-strata/internal/hint"
)

// Exit codes a CI job can act on.
const (
	exitOK       = 0
	exitFailed   = 1
	exitUsage    = 2
	exitNotFound = 3
	exitRefused  = 4
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	cmd := newRoot()
	cmd.SetArgs(args)
	err := cmd.Execute()
	if err == nil {
		return exitOK
	}
	code := exitCode(err)
	h := hint.Of(err)
	// Catalog values in a message (a version, a reason) are escaped like
	// everywhere else: no raw terminal escape or forged line.
	msg := esc(oneLine(err.Error()))
	fmt.Fprintln(os.Stderr, "strata:", msg)
	if h != "" && !strings.Contains(err.Error(), h) {
		fmt.Fprintln(os.Stderr, "strata: hint:", esc(h))
	}
	if wantJSON(cmd, args) {
		// The error's schema, documented in docs/strata-cli.md.
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		enc.Encode(jsonError{Code: code, Message: oneLine(err.Error()), Hint: h})
	}
	return code
}

// oneLine folds cobra's multi-line "unknown command" message (with its
// "Did you mean this?" list) into one line; every other message is left
// as it is, for esc to show any newline in it as \n.
func oneLine(msg string) string {
	first, rest, ok := strings.Cut(strings.TrimRight(msg, "\n"), "\n\nDid you mean this?\n")
	if !ok || !strings.HasPrefix(first, "unknown command") {
		return msg
	}
	return first + "; did you mean " + strings.Join(strings.Fields(rest), " or ") + "?"
}

// jsonError is an error under --json: the exit code, the message, and
// what to do (a strata command line or advice), "" when there is none.
type jsonError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Hint    string `json:"hint"`
}

// wantJSON says whether --json was given, also when parsing the command
// line failed before it got to the flag.
func wantJSON(cmd *cobra.Command, args []string) bool {
	if on, err := cmd.PersistentFlags().GetBool("json"); err == nil && on {
		return true
	}
	for _, a := range args {
		if a == "--" {
			break
		}
		if a == "--json" || a == "--json=true" || a == "--json=1" {
			return true
		}
	}
	return false
}

// usageError marks a bad command line.
type usageError struct{ error }

func exitCode(err error) int {
	var u usageError
	switch {
	case errors.As(err, &u), errors.Is(err, catalog.ErrInvalid),
		strings.HasPrefix(err.Error(), "unknown command"), strings.HasPrefix(err.Error(), "unknown flag"),
		strings.HasPrefix(err.Error(), "unknown shorthand flag"):
		return exitUsage
	case errors.Is(err, catalog.ErrNotFound):
		return exitNotFound
	case errors.Is(err, catalog.ErrConflict), errors.Is(err, catalog.ErrRevoked), errors.Is(err, catalog.ErrNoRollback),
		errors.Is(err, catalog.ErrPolicy):
		return exitRefused
	}
	return exitFailed
}
