package packages

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/strata-build/packer-plugin-strata/internal/dpkg"
)

// Each command through a communicator costs tens of milliseconds (Packer's
// RPC, a shell, chroot), so strata-packages asks for what it reads in as
// few of them as it can: one before it acts (the programs it needs, dpkg's
// architecture, dpkg's database, apt's automatic marks and, when the update
// option needs them, the lists apt lacks and strata-chroot's description of
// its shared indexes) and dpkg's database again at the end of the command
// that installs. The answers come in sections, each ended by a line that
// names it with the exit status of its reader:
//
//	<body>\n<marker> <name> <status>\n
//
// The marker is random for each run, so nothing an image's files hold
// can end a section early or forge one.

// section is one part of a sectioned answer.
type section struct {
	body   string
	status int
}

// newMarker is a marker no file in the image can predict.
func newMarker() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return "strata-" + hex.EncodeToString(b)
}

// boundedRead reads path in the image as the builder's readers do
// (inroot.ReadRegular): the last component not followed, opened without
// blocking (a FIFO has nothing to say and ends the read at once), and at
// most one block more than max, so an endless device ends too.
func boundedRead(path string, max int) string {
	return fmt.Sprintf("dd if=%s iflag=nonblock,nofollow bs=1M count=%d status=none", path, max>>20+1)
}

// endSection is the shell that ends a section named name with the exit
// status of the command before it.
func endSection(marker, name string) string {
	return fmt.Sprintf(`printf '\n%%s %%s %%d\n' %s %s $?`, marker, name)
}

// shQuote quotes a script for sh -c, so that it is one program and any
// execute_command wraps all of it.
func shQuote(script string) string {
	return `sh -c '` + strings.ReplaceAll(script, `'`, `'\''`) + `'`
}

// readSections splits out into its sections, by name. A section named
// twice or a marker line that is not marker, name and status is an error:
// the output is not the script's.
func readSections(out, marker string) (map[string]section, error) {
	sections := map[string]section{}
	sep := "\n" + marker + " "
	for {
		i := strings.Index(out, sep)
		if i < 0 {
			return sections, nil
		}
		body := out[:i]
		line, rest, _ := strings.Cut(out[i+len(sep):], "\n")
		name, st, ok := strings.Cut(line, " ")
		status, err := strconv.Atoi(st)
		if !ok || err != nil || name == "" {
			return nil, fmt.Errorf("a malformed section end %q", line)
		}
		if _, dup := sections[name]; dup {
			return nil, fmt.Errorf("section %s twice", name)
		}
		sections[name] = section{body: body, status: status}
		out = rest
	}
}

// probeMissing is the state command's exit status when a program
// strata-packages drives is missing; it prints the program's name.
const probeMissing = 3

// Sections of the state command.
const (
	secArch         = "arch"
	secStatus       = "status"
	secExtended     = "extended_states"
	secMissingLists = "missing_lists"
	secIndexesInfo  = "indexes_info"
)

// extendedStatesPath is apt's record of automatically installed packages;
// maxExtendedStates bounds what is read of it (a variable for the tests).
const extendedStatesPath = "/var/lib/apt/extended_states"

var maxExtendedStates = dpkg.MaxStatusSize

// stateCommand reads, in one round trip, what strata-packages decides on:
// it checks for the programs it drives (exit probeMissing naming one that
// is missing), then prints dpkg's architecture, dpkg's database and apt's
// extended_states and, with lists, the package lists apt lacks and
// strata-chroot's description of its shared indexes.
func stateCommand(marker string, lists bool) string {
	parts := []string{
		`for c in apt-get dpkg-query apt-mark dd; do command -v "$c" >/dev/null || { echo "$c"; exit 3; }; done`,
		`dpkg --print-architecture`, endSection(marker, secArch),
		boundedRead(dpkg.StatusPath, dpkg.MaxStatusSize), endSection(marker, secStatus),
		boundedRead(extendedStatesPath, maxExtendedStates) + ` 2>/dev/null`, endSection(marker, secExtended),
	}
	if lists {
		parts = append(parts,
			missingListsCommand, endSection(marker, secMissingLists),
			boundedRead(sharedIndexesInfo, 1<<20)+` 2>/dev/null`, endSection(marker, secIndexesInfo))
	}
	return shQuote(strings.Join(parts, "\n"))
}

// imageState is what the state command read.
type imageState struct {
	native    string
	installed installedSet
	// auto are the packages apt marks automatically installed; present
	// all that extended_states has an entry for.
	auto, present map[string]bool
	// lists says whether the two below were read.
	lists bool
	// missingLists are the package lists apt's sources need and the
	// image lacks; listsErr says why they could not be named.
	missingLists []string
	listsErr     string
	// indexesInfo is strata-chroot's description of the shared indexes,
	// "" when there is none.
	indexesInfo string
}

// parseState reads the state command's output.
func parseState(out, marker string, lists bool) (*imageState, error) {
	secs, err := readSections(out, marker)
	if err != nil {
		return nil, err
	}
	get := func(name string) (section, error) {
		s, ok := secs[name]
		if !ok {
			return s, fmt.Errorf("the answer has no %s section (the command was cut short?)", name)
		}
		return s, nil
	}
	st := &imageState{lists: lists}

	arch, err := get(secArch)
	if err != nil {
		return nil, err
	}
	st.native = strings.TrimSpace(arch.body)
	if arch.status != 0 || !dpkg.ValidName(st.native) {
		return nil, fmt.Errorf("dpkg --print-architecture said %q (exit %d)", st.native, arch.status)
	}

	status, err := get(secStatus)
	if err != nil {
		return nil, err
	}
	if st.installed, err = parseInstalled(status.body, status.status); err != nil {
		return nil, err
	}

	ext, err := get(secExtended)
	if err != nil {
		return nil, err
	}
	st.auto, st.present = map[string]bool{}, map[string]bool{}
	if len(ext.body) > maxExtendedStates {
		// Cut short, it would lack entries that are there: the marks
		// appended to it could then repeat one.
		return nil, fmt.Errorf("reading %s: it is larger than %d bytes, more than apt ever writes", extendedStatesPath, maxExtendedStates)
	}
	if ext.status == 0 { // no file: nothing is marked automatic
		st.auto, st.present = parseExtendedStates(ext.body)
	}

	if lists {
		missing, err := get(secMissingLists)
		if err != nil {
			return nil, err
		}
		st.missingLists = strings.Fields(missing.body)
		if missing.status != 0 {
			st.listsErr = fmt.Sprintf("apt-get indextargets failed: exit %d", missing.status)
		}
		info, err := get(secIndexesInfo)
		if err != nil {
			return nil, err
		}
		if info.status == 0 {
			st.indexesInfo = info.body
		}
	}
	return st, nil
}

// parseInstalled reads dpkg's database as the status section holds it.
func parseInstalled(body string, status int) (installedSet, error) {
	if status != 0 {
		return nil, fmt.Errorf("reading %s: exit %d (it must be a regular file)", dpkg.StatusPath, status)
	}
	if len(body) == 0 {
		return nil, fmt.Errorf("reading %s: it is empty or not a regular file (a FIFO, a device?); the image's dpkg database is broken", dpkg.StatusPath)
	}
	if len(body) > dpkg.MaxStatusSize {
		return nil, fmt.Errorf("reading %s: it is larger than %d bytes, more than a dpkg database ever holds", dpkg.StatusPath, dpkg.MaxStatusSize)
	}
	pkgs, err := dpkg.ReadStatus(strings.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", dpkg.StatusPath, err)
	}
	set := installedSet{}
	for _, p := range pkgs {
		set[p.Name+":"+p.Architecture] = p.Version
	}
	return set, nil
}

// parseExtendedStates reads apt's extended_states: the packages marked
// automatically installed and all that have an entry.
func parseExtendedStates(body string) (auto, present map[string]bool) {
	auto, present = map[string]bool{}, map[string]bool{}
	for _, stanza := range strings.Split(body, "\n\n") {
		f := map[string]string{}
		for _, line := range strings.Split(stanza, "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok {
				f[k] = strings.TrimSpace(v)
			}
		}
		if f["Package"] == "" {
			continue
		}
		key := f["Package"] + ":" + f["Architecture"]
		present[key] = true
		if f["Auto-Installed"] == "1" {
			auto[key] = true
		}
	}
	return auto, present
}
