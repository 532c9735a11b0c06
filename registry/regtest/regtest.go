// Package regtest starts a throwaway OCI registry for tests and benchmarks:
// Debian's docker-registry (the CNCF distribution registry) on a free
// loopback port, htpasswd auth with a generated password, storage in a temp
// dir, stopped and removed afterwards. It never uses a registry someone
// else started.
package regtest

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"
)

// Program is Debian's registry binary.
var Program = "/usr/bin/docker-registry"

// Server is a running throwaway registry.
type Server struct {
	Dir      string // config, htpasswd, storage, log
	Host     string // 127.0.0.1:PORT
	User     string
	Password string
	cmd      *exec.Cmd
	done     chan struct{}
}

// Start starts a registry with htpasswd auth (user "strata", a random
// password).
func Start() (*Server, error) {
	if _, err := os.Stat(Program); err != nil {
		return nil, fmt.Errorf("%s not found; install Debian's docker-registry package (make test does)", Program)
	}
	if _, err := exec.LookPath("htpasswd"); err != nil {
		return nil, fmt.Errorf("htpasswd not found; install Debian's apache2-utils package (make test does)")
	}
	dir, err := os.MkdirTemp("", "strata-registry-")
	if err != nil {
		return nil, err
	}
	pw := make([]byte, 12)
	rand.Read(pw)
	s := &Server{Dir: dir, User: "strata", Password: hex.EncodeToString(pw), done: make(chan struct{})}
	out, err := exec.Command("htpasswd", "-Bbn", s.User, s.Password).Output()
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("htpasswd: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "htpasswd"), out, 0o600); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	for attempt := 0; attempt < 5; attempt++ {
		if err = s.start(); err == nil {
			return s, nil
		}
	}
	os.RemoveAll(dir)
	return nil, err
}

func (s *Server) start() error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	host := l.Addr().String()
	l.Close()
	return s.startAt(host)
}

// startAt writes the config for host and starts the registry there.
func (s *Server) startAt(host string) error {
	s.Host = host
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: info
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
auth:
  htpasswd:
    realm: strata-test
    path: %s
`, filepath.Join(s.Dir, "storage"), s.Host, filepath.Join(s.Dir, "htpasswd"))
	if err := os.WriteFile(filepath.Join(s.Dir, "config.yml"), []byte(cfg), 0o600); err != nil {
		return err
	}
	logf, err := os.OpenFile(filepath.Join(s.Dir, "log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	s.cmd = exec.Command(Program, "serve", filepath.Join(s.Dir, "config.yml"))
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		return err
	}
	s.done = make(chan struct{})
	go func() { s.cmd.Wait(); close(s.done) }()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			log, _ := os.ReadFile(filepath.Join(s.Dir, "log"))
			return fmt.Errorf("docker-registry exited: %s", tail(string(log)))
		default:
		}
		resp, err := http.Get("http://" + s.Host + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusUnauthorized {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.kill()
	return fmt.Errorf("docker-registry did not answer on %s", s.Host)
}

func tail(s string) string {
	if len(s) > 2000 {
		return s[len(s)-2000:]
	}
	return s
}

func (s *Server) kill() {
	if s.cmd != nil && s.cmd.Process != nil {
		syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.done
	}
}

// Stop stops the registry (storage kept, for Restart).
func (s *Server) Stop() { s.kill() }

// Restart starts the stopped registry again, on its port, with its storage.
func (s *Server) Restart() error {
	var err error
	for attempt := 0; attempt < 20; attempt++ {
		if err = s.startAt(s.Host); err == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return err
}

// Close stops the registry and removes its files.
func (s *Server) Close() {
	s.kill()
	os.RemoveAll(s.Dir)
}

// DockerConfig writes a Docker config directory holding the registry's
// credentials (password when "" is the right one) and returns it, for
// DOCKER_CONFIG.
func (s *Server) DockerConfig(password string) (string, error) {
	if password == "" {
		password = s.Password
	}
	dir, err := os.MkdirTemp(s.Dir, "docker-")
	if err != nil {
		return "", err
	}
	auth := base64.StdEncoding.EncodeToString([]byte(s.User + ":" + password))
	cfg := fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, s.Host, auth)
	return dir, os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o600)
}

var uploadRe = regexp.MustCompile(`"(PATCH|PUT|POST) /v2/([^ ]+)/blobs/uploads/([^ "]*) HTTP/[0-9.]+" ([0-9]+)`)

// BlobUploads lists, from the registry's access log, the repositories
// that received a blob's bytes (one entry per completed upload: a PUT
// that closed an upload session, or a one-request POST with its digest),
// in order. Mounts are not uploads.
func (s *Server) BlobUploads() ([]string, error) {
	log, err := os.ReadFile(filepath.Join(s.Dir, "log"))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, m := range uploadRe.FindAllStringSubmatch(string(log), -1) {
		completed := m[4] == "201" && (m[1] == "PUT" || m[1] == "POST" && strings.Contains(m[3], "digest="))
		if completed {
			out = append(out, m[2])
		}
	}
	return out, nil
}

// Log is the registry's log so far.
func (s *Server) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "log"))
	return strings.TrimSpace(string(b))
}
