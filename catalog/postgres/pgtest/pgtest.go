// Package pgtest starts a throwaway PostgreSQL server for tests and
// benchmarks: initdb in a temp dir, pg_ctl on a free loopback port, stopped
// and removed afterwards. It never uses a server someone else started.
package pgtest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// BinDir is where Debian's PostgreSQL 15 keeps its server programs.
var BinDir = "/usr/lib/postgresql/15/bin"

// Server is a running throwaway server.
type Server struct {
	Dir  string
	Port int
	run  func(args ...string) ([]byte, error)
}

// Start initializes and starts a server. As root it runs the server as the
// postgres user, since PostgreSQL refuses to run as root.
func Start() (*Server, error) {
	if _, err := os.Stat(filepath.Join(BinDir, "initdb")); err != nil {
		return nil, fmt.Errorf("PostgreSQL server programs not found in %s; install Debian's postgresql package (make test does)", BinDir)
	}
	dir, err := os.MkdirTemp("", "strata-pg-")
	if err != nil {
		return nil, err
	}
	s := &Server{Dir: dir}
	s.run = func(args ...string) ([]byte, error) {
		return exec.Command(args[0], args[1:]...).CombinedOutput()
	}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root needs the postgres user (from the postgresql package): %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			return nil, err
		}
		s.run = func(args ...string) ([]byte, error) {
			return exec.Command("runuser", append([]string{"-u", "postgres", "--"}, args...)...).CombinedOutput()
		}
	}
	data := filepath.Join(dir, "data")
	if out, err := s.run(filepath.Join(BinDir, "initdb"), "-D", data, "-U", "strata", "-A", "trust", "--no-sync", "-E", "UTF8"); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %v\n%s", err, out)
	}
	for attempt := 0; attempt < 5; attempt++ {
		s.Port, err = freePort()
		if err != nil {
			return nil, err
		}
		opts := fmt.Sprintf("-h 127.0.0.1 -p %d -k %s -c fsync=off -c synchronous_commit=on -c max_connections=64", s.Port, dir)
		out, err := s.run(filepath.Join(BinDir, "pg_ctl"), "-D", data, "-o", opts, "-l", filepath.Join(dir, "log"), "-w", "-t", "60", "start")
		if err == nil {
			return s, nil
		}
		if !strings.Contains(string(out), "could not") && attempt > 0 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	log, _ := os.ReadFile(filepath.Join(dir, "log"))
	os.RemoveAll(dir)
	return nil, fmt.Errorf("pg_ctl start failed: %s", log)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// URL names a database on the server, creating it first.
func (s *Server) URL(db string) (string, error) {
	if out, err := s.run(filepath.Join(BinDir, "createdb"), "-h", "127.0.0.1", "-p", strconv.Itoa(s.Port), "-U", "strata", db); err != nil {
		return "", fmt.Errorf("createdb %s: %v\n%s", db, err, out)
	}
	return fmt.Sprintf("postgres://strata@127.0.0.1:%d/%s?sslmode=disable", s.Port, db), nil
}

// Stop stops the server and removes its files.
func (s *Server) Stop() error {
	out, err := s.run(filepath.Join(BinDir, "pg_ctl"), "-D", filepath.Join(s.Dir, "data"), "-m", "immediate", "-w", "stop")
	os.RemoveAll(s.Dir)
	if err != nil {
		return fmt.Errorf("pg_ctl stop: %v\n%s", err, out)
	}
	return nil
}
