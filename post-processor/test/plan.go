package test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// A run's files: run.sh (the runner), cN.sh (one a test case) and
// scripts/ (the user's scripts), shipped into the image at GuestDir (a
// read-only bind in container mode, a tar on a second disk in vm mode).
// The runner prints marked lines; everything else it prints is ignored.
const (
	GuestDir = "/run/strata-test"
	Marker   = "STRATA-TEST:"
	// maxOutput is how much of a check's output comes back.
	maxOutput = 64 << 10
)

// testCase is one thing the runner runs: a check, or one script of a
// check's scripts.
type testCase struct {
	Name    string // the JUnit test case's name
	Check   *Check
	Type    string // command, service, listening, http, script
	Timeout time.Duration
	Script  string // the shell script (cN.sh)
	File    string // a script's host path (scripts)
}

// plan expands the checks into test cases for mode.
func plan(c *Config) []testCase {
	var out []testCase
	for i := range c.Checks {
		ch := &c.Checks[i]
		tc := testCase{Name: ch.Name, Check: ch, Timeout: ch.timeout}
		switch {
		case ch.Command != "":
			tc.Type, tc.Script = "command", ch.Command+"\n"
		case ch.Service != "":
			tc.Type, tc.Script = "service", serviceScript(ch.Service, c.Mode)
		case ch.Listening != "":
			tc.Type, tc.Script = "listening", listeningScript(ch.Listening)
		case ch.HTTP != "":
			tc.Type, tc.Script = "http", httpScript(ch.HTTP)
		case len(ch.files) > 0:
			for _, f := range ch.files {
				s := tc
				s.Type, s.File = "script", f
				s.Name = ch.Name + "/" + filepath.Base(f)
				s.Script = scriptScript(scriptName(len(out), f))
				out = append(out, s)
			}
			continue
		}
		out = append(out, tc)
	}
	return out
}

// shellQuote quotes s for sh.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func unitName(s string) string {
	if strings.Contains(s, ".") {
		return s
	}
	return s + ".service"
}

func serviceScript(svc, mode string) string {
	u := shellQuote(unitName(svc))
	s := "st=$(systemctl is-enabled " + u + " 2>&1); rc=$?\necho \"is-enabled: $st\"\n" +
		"[ $rc -eq 0 ] || { echo " + shellQuote(unitName(svc)+" is not enabled") + "; exit 1; }\n"
	if mode == ModeVM {
		s += "st=$(systemctl is-active " + u + " 2>&1); rc=$?\necho \"is-active: $st\"\n" +
			"[ $rc -eq 0 ] || { systemctl --no-pager status " + u + " 2>&1 | tail -n 20; echo " + shellQuote(unitName(svc)+" is not active") + "; exit 1; }\n"
	}
	return s
}

// listeningScript looks for a listening socket in /proc/net (no ss or
// netstat needed): state 0A is TCP LISTEN, 07 an unconnected UDP socket.
// tcp:PORT also takes an IPv6 socket (a dual-stack socket serves IPv4).
func listeningScript(l string) string {
	m := listenRe.FindStringSubmatch(l)
	port, _ := strconv.Atoi(m[2])
	state := "0A"
	if strings.HasPrefix(m[1], "udp") {
		state = "07"
	}
	files := "/proc/net/" + m[1]
	if !strings.HasSuffix(m[1], "6") {
		files += " /proc/net/" + m[1] + "6"
	}
	return fmt.Sprintf("if cat %s 2>/dev/null | grep -Eq '^ *[0-9]+: [0-9A-Fa-f]+:%04X [0-9A-Fa-f]+:[0-9A-Fa-f]+ %s '; then echo 'listening on %s'; exit 0; fi\n"+
		"echo 'nothing listens on %s'; cat %s 2>/dev/null; exit 1\n", files, port, state, l, l, files)
}

// httpScript fetches u and prints "HTTP-STATUS: N" and the body.
func httpScript(u string) string {
	return `u=` + shellQuote(u) + `
b=$(mktemp)
if command -v curl >/dev/null 2>&1; then
  s=$(curl -sS -o "$b" -w '%{http_code}' "$u"); rc=$?
elif command -v wget >/dev/null 2>&1; then
  h=$(mktemp); wget -S -O "$b" "$u" 2>"$h"; rc=$?
  s=$(sed -n 's/^ *HTTP\/[0-9.]* \([0-9][0-9][0-9]\).*/\1/p' "$h" | tail -n 1); [ -n "$s" ] && rc=0; cat "$h" >&2
elif command -v bash >/dev/null 2>&1; then
  bash -c 'r=${1#http://}; hp=${r%%/*}; p=/${r#*/}; [ "$hp" = "$r" ] && p=/; h=${hp%:*}; port=${hp##*:}; [ "$port" = "$hp" ] && port=80
    exec 3<>/dev/tcp/$h/$port || exit 7; printf "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n" "$p" "$hp" >&3; cat <&3' _ "$u" >"$b.raw"; rc=$?
  s=$(head -n 1 "$b.raw" | sed -n 's/^HTTP\/[0-9.]* \([0-9][0-9][0-9]\).*/\1/p'); sed '1,/^\r*$/d' "$b.raw" >"$b"
else
  echo "the image has none of curl, wget and bash to fetch $u"; exit 2
fi
echo "HTTP-STATUS: ${s:-000}"
cat "$b"
exit $rc
`
}

// scriptName is where case i's script goes under scripts/.
func scriptName(i int, file string) string { return fmt.Sprintf("%d-%s", i, filepath.Base(file)) }

func scriptScript(base string) string {
	p := shellQuote(GuestDir + "/scripts/" + base)
	if strings.HasSuffix(base, ".bats") {
		return "if command -v bats >/dev/null 2>&1; then exec bats --tap " + p + "; fi\n" +
			"echo 'bats is not in the image: running the file as an executable'\n" +
			"t=$(mktemp); cp " + p + " \"$t\"; chmod +x \"$t\"; exec \"$t\"\n"
	}
	return "t=$(mktemp); cp " + p + " \"$t\"; chmod +x \"$t\"; exec \"$t\"\n"
}

// runnerScript runs every case in order, printing for each
//
//	STRATA-TEST:RESULT N EXIT MS
//	STRATA-TEST:OUT N <base64 of the output, in pieces>
//	STRATA-TEST:DONE N
//
// and STRATA-TEST:END at the end. In vm mode ($1 = vm) it first brings
// the system up to multi-user.target (STRATA-TEST:READY) and prints on the
// console.
func runnerScript(cases []testCase) string {
	var b strings.Builder
	b.WriteString(`#!/bin/sh
# strata-test's runner (generated): runs the checks, prints marked results.
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH LC_ALL=C
D=${STRATA_TEST_DIR:-` + GuestDir + `}
M=` + Marker + `
if [ "$1" = vm ]; then
  exec >/dev/console 2>&1
  echo "${M}BOOTED"
  systemctl start multi-user.target
  echo "${M}READY $?"
fi
W=$(mktemp -d /tmp/strata-test.XXXXXX) && trap 'rm -rf "$W"' EXIT || W=/tmp
now() { t=$(date +%s%3N 2>/dev/null); case "$t" in *N|"") echo 0;; *) echo "$t";; esac; }
run() {
  t0=$(now)
  if command -v timeout >/dev/null 2>&1; then
    timeout -k 5 "$2" /bin/sh "$D/c$1.sh" >"$W/out" 2>&1 </dev/null; rc=$?
  else
    /bin/sh "$D/c$1.sh" >"$W/out" 2>&1 </dev/null; rc=$?
  fi
  t1=$(now)
  echo "${M}RESULT $1 $rc $((t1 - t0))"
  head -c ` + strconv.Itoa(maxOutput) + ` "$W/out" | base64 | tr -d '\n' | fold -w 160 | sed "s/^/${M}OUT $1 /"
  echo
  echo "${M}DONE $1"
}
`)
	for i, tc := range cases {
		fmt.Fprintf(&b, "run %d %d\n", i, int(tc.Timeout.Seconds()+0.999))
	}
	b.WriteString("echo \"${M}END\"\n")
	return b.String()
}

// writeJob writes the run's files into dir.
func writeJob(dir string, cases []testCase) error {
	if err := os.MkdirAll(filepath.Join(dir, "scripts"), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "run.sh"), []byte(runnerScript(cases)), 0o755); err != nil {
		return err
	}
	for i, tc := range cases {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("c%d.sh", i)), []byte(tc.Script), 0o644); err != nil {
			return err
		}
		if tc.File != "" {
			b, err := os.ReadFile(tc.File)
			if err != nil {
				return fmt.Errorf("check %q: scripts: %w", tc.Check.Name, err)
			}
			if err := os.WriteFile(filepath.Join(dir, "scripts", scriptName(i, tc.File)), b, 0o755); err != nil {
				return err
			}
		}
	}
	return nil
}
