// Command rawinsert runs one SQL statement with its arguments straight on
// a SQLite catalog, bypassing the catalog's checks: it stands for data
// written by an older strata or by hand, for the tests that such data is
// printed safely.
//
//	rawinsert DB SQL [ARG ...]
//
// An ARG "now" is the current time in nanoseconds.
package main

import (
	"database/sql"
	"fmt"
	"os"
	"time"

	_ "modernc.org/sqlite"
)

func main() {
	db, err := sql.Open("sqlite", "file:"+os.Args[1])
	if err == nil {
		var args []interface{}
		for _, a := range os.Args[3:] {
			if a == "now" {
				args = append(args, time.Now().UnixNano())
				continue
			}
			args = append(args, a)
		}
		_, err = db.Exec(os.Args[2], args...)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
