package test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/strata-build/packer-plugin-strata/internal/hostexec"
)

// bootEntry is what the disk's ESP boots.
type bootEntry struct {
	kernel, initrd, cmdline string
}

// The GPT type of an EFI system partition.
const espType = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"

// bootFiles copies the kernel and initramfs the disk's boot loader boots
// out of its EFI system partition (mtools, reading the file only) into
// tmp, with their command line: systemd-boot's loader entry, or the
// configuration built into a GRUB image.
func bootFiles(ctx context.Context, disk, tmp string) (*bootEntry, error) {
	out, err := hostexec.Output(hostexec.Command(ctx, "sfdisk", "--json", disk), nil)
	if err != nil {
		return nil, fmt.Errorf("vm: reading the disk's partition table: %w", err)
	}
	var pt struct {
		PartitionTable struct {
			SectorSize int64 `json:"sectorsize"`
			Partitions []struct {
				Start int64  `json:"start"`
				Type  string `json:"type"`
				UUID  string `json:"uuid"`
			} `json:"partitions"`
		} `json:"partitiontable"`
	}
	if err := json.Unmarshal(out, &pt); err != nil {
		return nil, fmt.Errorf("vm: sfdisk --json %s: %w", disk, err)
	}
	sector := pt.PartitionTable.SectorSize
	if sector == 0 {
		sector = 512
	}
	espAt := int64(-1)
	rootUUID := ""
	for _, p := range pt.PartitionTable.Partitions {
		if strings.EqualFold(p.Type, espType) {
			espAt = p.Start * sector
		} else if rootUUID == "" {
			rootUUID = strings.ToLower(p.UUID)
		}
	}
	if espAt < 0 {
		return nil, fmt.Errorf("vm: %s has no EFI system partition: is it strata-chroot's disk output?", disk)
	}
	img := disk + "@@" + strconv.FormatInt(espAt, 10)
	mtools := func(name string, args ...string) ([]byte, error) {
		cmd := hostexec.Command(ctx, name, append([]string{"-i", img}, args...)...)
		cmd.Env = append(cmd.Env, "MTOOLS_SKIP_CHECK=1")
		return hostexec.Output(cmd, nil)
	}
	copyOut := func(src, dst string) error {
		_, err := mtools("mcopy", "-n", "::"+src, dst)
		return err
	}
	var text string
	if list, err := mtools("mdir", "-b", "::/loader/entries"); err == nil {
		var entries []string
		for _, l := range strings.Split(string(list), "\n") {
			if l = strings.TrimSpace(l); strings.HasSuffix(l, ".conf") {
				entries = append(entries, l)
			}
		}
		if len(entries) == 0 {
			return nil, fmt.Errorf("vm: the disk's ESP has no systemd-boot loader entry")
		}
		slices.Sort(entries)
		src := entries[0]
		if i := strings.Index(src, "/loader/entries/"); i >= 0 {
			src = src[i:]
		}
		dst := filepath.Join(tmp, "entry.conf")
		if err := copyOut(src, dst); err != nil {
			return nil, fmt.Errorf("vm: %w", err)
		}
		b, err := os.ReadFile(dst)
		if err != nil {
			return nil, err
		}
		text = string(b)
	} else {
		dst := filepath.Join(tmp, "BOOTX64.EFI")
		if err := copyOut("/EFI/BOOT/BOOTX64.EFI", dst); err != nil {
			return nil, fmt.Errorf("vm: the disk's ESP has neither systemd-boot's loader entries nor a boot loader: %w", err)
		}
		b, err := os.ReadFile(dst)
		if err != nil {
			return nil, err
		}
		text = grubConfig(b)
	}
	e, err := parseEntry(text)
	if err != nil {
		return nil, fmt.Errorf("vm: %w", err)
	}
	if e.cmdline == "" && rootUUID != "" {
		e.cmdline = "root=PARTUUID=" + rootUUID + " ro console=ttyS0"
	}
	k, i := filepath.Join(tmp, "linux"), filepath.Join(tmp, "initrd")
	if err := copyOut(e.kernel, k); err != nil {
		return nil, fmt.Errorf("vm: the kernel: %w", err)
	}
	e.kernel = k
	if e.initrd != "" {
		if err := copyOut(e.initrd, i); err != nil {
			return nil, fmt.Errorf("vm: the initramfs: %w", err)
		}
		e.initrd = i
	}
	return e, nil
}

// grubConfig finds the "linux" and "initrd" lines of the configuration
// grub-mkimage built into a GRUB image.
func grubConfig(b []byte) string {
	var lines []string
	for _, l := range bytes.Split(b, []byte("\n")) {
		s := string(bytes.TrimSpace(l))
		if strings.HasPrefix(s, "linux /") || strings.HasPrefix(s, "initrd /") {
			lines = append(lines, s)
		}
	}
	return strings.Join(lines, "\n")
}

// parseEntry reads a loader entry's (or GRUB's) linux, initrd and options.
func parseEntry(text string) (*bootEntry, error) {
	e := &bootEntry{}
	for _, l := range strings.Split(text, "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "linux":
			e.kernel = f[1]
			if len(f) > 2 {
				e.cmdline = strings.Join(f[2:], " ")
			}
		case "initrd":
			if e.initrd == "" {
				e.initrd = f[1]
			}
		case "options":
			e.cmdline = strings.Join(f[1:], " ")
		}
	}
	if e.kernel == "" || !strings.HasPrefix(e.kernel, "/") || strings.Contains(e.kernel, "..") || strings.Contains(e.initrd, "..") {
		return nil, fmt.Errorf("the disk's boot loader names no kernel on its ESP")
	}
	return e, nil
}
