// Command strata is the command line over the catalog: list images and
// versions, promote, roll back, revoke, trace lineage, diff and collect.
//
// Exit codes: 0 done, 1 failed, 2 bad usage or input, 3 not found,
// 4 refused (conflict, revoked target, nothing to roll back to).
package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/strata-build/packer-plugin-strata/catalog"
	_ "github.com/strata-build/packer-plugin-strata/catalog/postgres"
	_ "github.com/strata-build/packer-plugin-strata/catalog/sqlite"
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
	fmt.Fprintln(os.Stderr, "strata:", err)
	return exitCode(err)
}

// usageError marks a bad command line.
type usageError struct{ error }

func exitCode(err error) int {
	var u usageError
	switch {
	case errors.As(err, &u), errors.Is(err, catalog.ErrInvalid),
		strings.HasPrefix(err.Error(), "unknown command"), strings.HasPrefix(err.Error(), "unknown flag"):
		return exitUsage
	case errors.Is(err, catalog.ErrNotFound):
		return exitNotFound
	case errors.Is(err, catalog.ErrConflict), errors.Is(err, catalog.ErrRevoked), errors.Is(err, catalog.ErrNoRollback):
		return exitRefused
	}
	return exitFailed
}
