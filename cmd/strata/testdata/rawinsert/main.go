// Command rawinsert appends a channel history entry straight into a SQLite
// catalog, bypassing the catalog's checks: it stands for data written by an
// older strata, for the test that such data is printed safely.
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
		_, err = db.Exec(`INSERT INTO channel_history (image, channel, version, previous, action, actor, reason, at_ns)
			VALUES ('img', 'dev', '1.0.0', '1.0.0', 'promote', 'old-strata', ?, ?)`, os.Args[2], time.Now().UnixNano())
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
