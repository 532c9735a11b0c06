package chroot

// What users of amazon-chroot, packer-builder-arm and arm-image write, met
// with what strata-chroot does instead: every option of those builders is
// accepted by the configuration's schema only to be refused with a hint, so
// that a ported template fails with "use X" rather than Packer's
// "Unsupported argument"; and amazon-chroot's and arm-image's list form of
// chroot_mounts works. (A template field the builder does not have, such as
// `{{ .Device }}`, is refused in config_templates.go.)

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"reflect"

	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"
)

// foreignOption is an option of another chroot builder.
type foreignOption struct {
	name     string // as that builder spells it
	builders string // which builders have it
	// instead is what to write in strata, or why says why it has no
	// meaning here; exactly one is set. value, when set, gives a hint for
	// the value written.
	instead, why string
	value        func(v interface{}) string
	// typ is its HCL type; attrs, when set, make it a block with them.
	typ   cty.Type
	attrs map[string]cty.Type
}

const (
	amazon     = "amazon-chroot"
	builderArm = "packer-builder-arm"
	armImage   = "arm-image"
)

var (
	str     = cty.String
	boolean = cty.Bool
	number  = cty.Number
	strList = cty.List(cty.String)
	strMap  = cty.Map(cty.String)
	lists   = cty.List(cty.List(cty.String))
)

// Hints shared by several options.
const (
	noCloud      = "strata-chroot builds on this host and talks to no cloud API: it needs no credentials, region or endpoint"
	noRegions    = "there are no regions: images are files in the store, registered in the catalog, which many build hosts can share (a PostgreSQL catalog); the oci output goes to any registry"
	noDevice     = "strata-chroot builds in a directory on the build host: there is no volume, device or partition"
	noLaunch     = "a strata image is files, not an AMI: there is no instance type, launch setting or boot flag to record"
	noSharing    = "who may use an image is decided by the catalog's channels and the registries' access control, not by launch permissions"
	noEncryption = "outputs are files on the build host: encrypt the disk they are on, or the registry they are pushed to"
	noPartitions = "strata-chroot makes root file systems and file system images (formats), not partitioned board images"
	noDownload   = "source_archive is a rootfs tarball on this host: strata-chroot downloads nothing, so check the file before the build"
	archHint     = "strata-chroot copies no emulator into the image: with architecture = \"arm64\" (any Debian architecture) it runs the image's programs through the host's binfmt_misc handler with the F flag (install qemu-user-static)"
	useArch      = "architecture = \"arm64\" (a Debian architecture name)"
	useCatalog   = "the strata-catalog post-processor"
	useMounts    = "chroot_mounts (blocks of type, source, target; the list form [[\"tmpfs\", \"tmpfs\", \"/var/tmp\"]] works too); the builder mounts proc, sys, dev, dev/pts and run itself"
)

var (
	keyValue   = map[string]cty.Type{"key": str, "value": str}
	armMount   = map[string]cty.Type{"mount_type": str, "source_path": str, "destination_path": str}
	blockDevAt = map[string]cty.Type{"device_name": str, "delete_on_termination": boolean, "encrypted": boolean, "iops": number,
		"kms_key_id": str, "no_device": boolean, "snapshot_id": str, "throughput": number, "virtual_name": str, "volume_type": str, "volume_size": number}
)

// foreignOptions is every option of amazon-chroot, packer-builder-arm and
// arm-image that strata-chroot does not share, with its hint.
var foreignOptions = []foreignOption{
	// amazon-chroot: the AMI, where strata has the catalog.
	{name: "ami_name", builders: amazon, typ: str, instead: useCatalog + "'s image_name (every build becomes a new version of it)"},
	{name: "ami_description", builders: amazon, typ: str, instead: useCatalog + "'s description"},
	{name: "tags", builders: amazon, typ: strMap, instead: useCatalog + "'s labels (or labels, for the image's OCI config)"},
	{name: "tag", builders: amazon, attrs: keyValue, instead: useCatalog + "'s labels (or labels, for the image's OCI config)"},
	{name: "snapshot_tags", builders: amazon, typ: strMap, instead: useCatalog + "'s labels"},
	{name: "snapshot_tag", builders: amazon, attrs: keyValue, instead: useCatalog + "'s labels"},
	{name: "root_volume_tags", builders: amazon, typ: strMap, instead: useCatalog + "'s labels"},
	{name: "root_volume_tag", builders: amazon, attrs: keyValue, instead: useCatalog + "'s labels"},
	{name: "force_deregister", builders: amazon, typ: boolean, instead: "nothing: the catalog keeps every version and a new build never replaces one; withdraw a bad one with `strata revoke`"},
	{name: "force_delete_snapshot", builders: amazon, typ: boolean, instead: "`strata gc`, which deletes what no channel can roll back to"},
	{name: "deprecate_at", builders: amazon, typ: str, instead: "`strata revoke` when the version must no longer be used"},
	{name: "deregistration_protection", builders: amazon, attrs: map[string]cty.Type{"enabled": boolean, "with_cooldown": boolean}, instead: "channels: `strata gc` never deletes what a channel holds or can roll back to"},
	{name: "ami_users", builders: amazon, typ: strList, why: noSharing},
	{name: "ami_groups", builders: amazon, typ: strList, why: noSharing},
	{name: "ami_org_arns", builders: amazon, typ: strList, why: noSharing},
	{name: "ami_ou_arns", builders: amazon, typ: strList, why: noSharing},
	{name: "snapshot_users", builders: amazon, typ: strList, why: noSharing},
	{name: "snapshot_groups", builders: amazon, typ: strList, why: noSharing},
	{name: "ami_product_codes", builders: amazon, typ: strList, why: noSharing},
	{name: "ami_regions", builders: amazon, typ: strList, why: noRegions},
	{name: "skip_region_validation", builders: amazon, typ: boolean, why: noRegions},
	{name: "region_kms_key_ids", builders: amazon, typ: strMap, why: noRegions},
	{name: "skip_save_build_region", builders: amazon, typ: boolean, why: noRegions},
	{name: "snapshot_copy_duration_minutes", builders: amazon, typ: number, why: noRegions},
	{name: "ami_virtualization_type", builders: amazon, typ: str, why: noLaunch},
	{name: "ena_support", builders: amazon, typ: boolean, why: noLaunch},
	{name: "sriov_support", builders: amazon, typ: boolean, why: noLaunch},
	{name: "imds_support", builders: amazon, typ: str, why: noLaunch},
	{name: "boot_mode", builders: amazon, typ: str, why: noLaunch},
	{name: "uefi_data", builders: amazon, typ: str, why: noLaunch},
	{name: "tpm_support", builders: amazon, typ: str, why: noLaunch},
	{name: "ami_architecture", builders: amazon, typ: str, instead: useArch},
	{name: "encrypt_boot", builders: amazon, typ: boolean, why: noEncryption},
	{name: "kms_key_id", builders: amazon, typ: str, why: noEncryption},
	{name: "root_volume_encrypt_boot", builders: amazon, typ: boolean, why: noEncryption},
	{name: "root_volume_kms_key_id", builders: amazon, typ: str, why: noEncryption},
	// amazon-chroot: AWS access.
	{name: "access_key", builders: amazon, typ: str, why: noCloud},
	{name: "secret_key", builders: amazon, typ: str, why: noCloud},
	{name: "token", builders: amazon, typ: str, why: noCloud},
	{name: "profile", builders: amazon, typ: str, why: noCloud},
	{name: "region", builders: amazon, typ: str, why: noCloud},
	{name: "mfa_code", builders: amazon, typ: str, why: noCloud},
	{name: "shared_credentials_file", builders: amazon, typ: str, why: noCloud},
	{name: "custom_endpoint_ec2", builders: amazon, typ: str, why: noCloud},
	{name: "decode_authorization_messages", builders: amazon, typ: boolean, why: noCloud},
	{name: "insecure_skip_tls_verify", builders: amazon, typ: boolean, why: noCloud},
	{name: "max_retries", builders: amazon, typ: number, why: noCloud},
	{name: "skip_metadata_api_check", builders: amazon, typ: boolean, why: noCloud},
	{name: "skip_credential_validation", builders: amazon, typ: boolean, why: noCloud},
	{name: "assume_role", builders: amazon, why: noCloud, attrs: map[string]cty.Type{"role_arn": str, "duration_seconds": number, "external_id": str,
		"policy": str, "policy_arns": strList, "session_name": str, "tags": strMap, "transitive_tag_keys": strList}},
	{name: "vault_aws_engine", builders: amazon, why: noCloud, attrs: map[string]cty.Type{"name": str, "role_arn": str, "ttl": str, "engine_name": str}},
	{name: "aws_polling", builders: amazon, why: noCloud, attrs: map[string]cty.Type{"delay_seconds": number, "max_attempts": number}},
	// amazon-chroot: the source and the volume.
	{name: "source_ami", builders: amazon, typ: str, instead: "parent (an image in the store), bootstrap {} or source_archive"},
	{name: "source_ami_filter", builders: amazon, attrs: map[string]cty.Type{"filters": strMap, "owners": strList, "most_recent": boolean},
		instead: "a `data \"strata-image\"` block (name with channel, version or tag) and parent = data.strata-image.NAME.image_id"},
	{name: "from_scratch", builders: amazon, typ: boolean, instead: "bootstrap { suite = \"bookworm\" }"},
	{name: "copy_files", builders: amazon, typ: strList, instead: "resolv_conf for /etc/resolv.conf, or a `file` provisioner for other files"},
	{name: "mount_options", builders: amazon, typ: strList, instead: "chroot_mounts { options = \"...\" } for extra mounts; the root's own mount is the builder's"},
	{name: "mount_partition", builders: amazon, typ: str, why: noDevice},
	{name: "device_path", builders: amazon, typ: str, why: noDevice + "; choose where the image is mounted with mount_path"},
	{name: "nvme_device_path", builders: amazon, typ: str, why: noDevice},
	{name: "root_device_name", builders: amazon, typ: str, why: noDevice},
	{name: "root_volume_type", builders: amazon, typ: str, why: noDevice},
	{name: "root_volume_size", builders: amazon, typ: number, instead: "ext4_free_space (with formats = [\"ext4\"]): an ext4 image is its content plus that much free space"},
	{name: "ami_block_device_mappings", builders: amazon, attrs: blockDevAt, why: noDevice + "; an ext4 or squashfs output is one file system"},

	// packer-builder-arm: the source image and the disk.
	{name: "file_urls", builders: builderArm, typ: strList, instead: "source_archive (a rootfs tarball on this host), bootstrap {} or parent"},
	{name: "file_checksum", builders: builderArm, typ: str, why: noDownload},
	{name: "file_checksum_url", builders: builderArm, typ: str, why: noDownload},
	{name: "file_checksum_type", builders: builderArm, typ: str, why: noDownload},
	{name: "file_target_path", builders: builderArm, typ: str, why: noDownload},
	{name: "file_target_extension", builders: builderArm, typ: str, why: noDownload},
	{name: "file_unarchive_cmd", builders: builderArm, typ: strList, instead: "source_archive, which unpacks .tar, .tar.gz, .tar.zst and .tar.xz itself"},
	{name: "image_path", builders: builderArm, typ: str, instead: "output_dir and formats (the outputs are named rootfs.<format>)"},
	{name: "image_size", builders: builderArm, typ: str, instead: "ext4_free_space (with formats = [\"ext4\"])"},
	{name: "image_size_bytes", builders: builderArm, typ: number, instead: "ext4_free_space (with formats = [\"ext4\"])"},
	{name: "image_type", builders: builderArm + " and " + armImage, typ: str, why: noPartitions},
	{name: "image_build_method", builders: builderArm, typ: str, instead: "parent to build on an existing image (as reuse does, without copying it), bootstrap {} for a new one"},
	{name: "image_partitions", builders: builderArm, why: noPartitions, attrs: map[string]cty.Type{"name": str, "type": str, "size": str,
		"start_sector": number, "filesystem": str, "filesystem_make_options": strList, "mountpoint": str, "skip_mkfs": boolean}},
	{name: "image_mount_path", builders: builderArm, typ: str, instead: "mount_path"},
	{name: "image_chroot_mounts", builders: builderArm, attrs: armMount, instead: useMounts},
	{name: "image_setup_extra", builders: builderArm, typ: lists, instead: "pre_mount_commands or post_mount_commands (host commands, {{ .MountPath }} is the image root)"},
	{name: "image_chroot_env", builders: builderArm, typ: strList, instead: "environment = { NAME = \"value\" } (a map, not NAME=value strings)"},
	{name: "qemu_binary_source_path", builders: builderArm, typ: str, why: archHint},
	{name: "qemu_binary_destination_path", builders: builderArm, typ: str, why: archHint},

	// arm-image.
	{name: "iso_url", builders: armImage, typ: str, instead: "source_archive (a rootfs tarball on this host), bootstrap {} or parent"},
	{name: "iso_urls", builders: armImage, typ: strList, instead: "source_archive (a rootfs tarball on this host), bootstrap {} or parent"},
	{name: "iso_checksum", builders: armImage, typ: str, why: noDownload},
	{name: "iso_target_path", builders: armImage, typ: str, why: noDownload},
	{name: "iso_target_extension", builders: armImage, typ: str, why: noDownload},
	{name: "output_directory", builders: armImage, typ: str, instead: "output_dir"},
	{name: "output_filename", builders: armImage, typ: str, instead: "output_dir and formats (the outputs are named rootfs.<format>)"},
	{name: "image_mounts", builders: armImage, typ: strList, instead: useMounts},
	{name: "additional_chroot_mounts", builders: armImage + " and " + builderArm, typ: lists, attrs: armMount, instead: useMounts},
	{name: "resolv-conf", builders: armImage, typ: str, instead: "resolv_conf", value: resolvConfHint},
	{name: "last_partition_extra_size", builders: armImage, typ: number, instead: "ext4_free_space (with formats = [\"ext4\"])"},
	{name: "target_image_size", builders: armImage, typ: number, instead: "ext4_free_space (with formats = [\"ext4\"])"},
	{name: "qemu_binary", builders: armImage, typ: str, why: archHint},
	{name: "qemu_args", builders: armImage, typ: strList, why: archHint},
	{name: "image_arch", builders: armImage, typ: str, instead: useArch},
	{name: "disable_embedded", builders: armImage, typ: boolean, why: archHint},
	{name: "podman_image", builders: armImage, typ: str, why: "strata-chroot runs on a Linux build host itself, never in a container"},
}

// resolvConfHint maps arm-image's resolv-conf values to resolv_conf's.
func resolvConfHint(v interface{}) string {
	s, _ := v.(string)
	switch s {
	case "off":
		return `resolv_conf = "none" (leaves the image's own file alone)`
	case "delete":
		return `resolv_conf = "copy-host": the host's file is there during the build, and afterwards the image's own is put back exactly (an image that had none has none)`
	case "copy-host", "bind-host":
		return `resolv_conf = "` + s + `"`
	}
	return "resolv_conf: copy-host, bind-host or none"
}

// blockKey is the spec key of a foreign option's block form when it has an
// attribute form too (additional_chroot_mounts).
func blockKey(name string) string { return name + " (block)" }

// listMountsKey is the spec key of chroot_mounts' list form in HCL.
const listMountsKey = "chroot_mounts (list form)"

// configSpec is the builder's HCL schema: its own options, the list form
// of chroot_mounts, and every foreign option (refused in Prepare with its
// hint).
func configSpec() hcldec.ObjectSpec {
	spec := hcldec.ObjectSpec((&Config{}).FlatMapstructure().HCL2Spec())
	spec[listMountsKey] = &hcldec.AttrSpec{Name: "chroot_mounts", Type: lists}
	for _, o := range foreignOptions {
		if o.typ != cty.NilType {
			spec[o.name] = &hcldec.AttrSpec{Name: o.name, Type: o.typ}
		}
		if o.attrs != nil {
			nested := hcldec.ObjectSpec{}
			for a, t := range o.attrs {
				nested[a] = &hcldec.AttrSpec{Name: a, Type: t}
			}
			key := o.name
			if o.typ != cty.NilType {
				key = blockKey(o.name)
			}
			spec[key] = &hcldec.BlockListSpec{TypeName: o.name, Nested: nested}
		}
	}
	return spec
}

// plainRaws makes every raw configuration a map with string keys: HCL
// templates' cty objects as JSON would write them (what Packer's SDK does
// itself), JSON templates' maps as they are.
func plainRaws(raws []interface{}) ([]interface{}, error) {
	out := make([]interface{}, len(raws))
	for i, raw := range raws {
		out[i] = raw
		if v, ok := raw.(cty.Value); ok {
			b, err := ctyjson.SimpleJSONValue{Value: v}.MarshalJSON()
			if err != nil {
				return nil, err
			}
			var m map[string]interface{}
			if err := json.Unmarshal(b, &m); err != nil {
				return nil, err
			}
			out[i] = m
		} else if m := stringKeyed(raw); m != nil {
			out[i] = m
		}
	}
	return out, nil
}

// foreignHints takes the foreign options out of the raw configurations and
// returns the hint for each one given, in the table's order.
func foreignHints(raws []interface{}) []string {
	given := map[string]interface{}{}
	for _, raw := range raws {
		m, ok := raw.(map[string]interface{})
		if !ok {
			continue
		}
		for _, o := range foreignOptions {
			for _, key := range []string{o.name, blockKey(o.name)} {
				v, present := m[key]
				if !present {
					continue
				}
				delete(m, key)
				if set(v) {
					given[o.name] = v
				}
			}
		}
	}
	var hints []string
	for _, o := range foreignOptions {
		v, ok := given[o.name]
		if !ok {
			continue
		}
		switch {
		case o.value != nil:
			hints = append(hints, fmt.Sprintf("%s is an option of %s, not of strata-chroot; write %s", o.name, o.builders, o.value(v)))
		case o.instead != "":
			hints = append(hints, fmt.Sprintf("%s is an option of %s, not of strata-chroot; use %s", o.name, o.builders, o.instead))
		default:
			hints = append(hints, fmt.Sprintf("%s is an option of %s that has no meaning here because %s; remove it", o.name, o.builders, o.why))
		}
	}
	return hints
}

// set says whether a raw value was written: HCL hands unset attributes as
// null and absent blocks as an empty list.
func set(v interface{}) bool {
	if v == nil {
		return false
	}
	if rv := reflect.ValueOf(v); (rv.Kind() == reflect.Slice || rv.Kind() == reflect.Map) && rv.Len() == 0 {
		return false
	}
	return true
}

// mountLists turns the list form of chroot_mounts ([["proc", "proc",
// "/proc"], ...], amazon-chroot's and arm-image's) into blocks, in JSON
// templates (under chroot_mounts) and HCL ones (under listMountsKey).
// Entries repeating a mount the builder makes itself are dropped with a
// warning.
func mountLists(raws []interface{}) []string {
	var warnings []string
	own := map[string]bool{"/proc": true, "/sys": true, "/dev": true, "/dev/pts": true, "/proc/sys/fs/binfmt_misc": true}
	for _, raw := range raws {
		m, ok := raw.(map[string]interface{})
		if !ok {
			continue
		}
		var list []interface{}
		if l, ok := m[listMountsKey].([]interface{}); ok {
			list = l
		}
		delete(m, listMountsKey)
		if l, ok := m["chroot_mounts"].([]interface{}); ok && len(l) > 0 {
			if _, isList := l[0].([]interface{}); isList {
				list = append(list, l...)
				delete(m, "chroot_mounts")
			}
		}
		if len(list) == 0 {
			continue
		}
		var blocks []interface{}
		if b, ok := m["chroot_mounts"].([]interface{}); ok {
			blocks = b
		}
		for _, e := range list {
			parts, ok := e.([]interface{})
			if !ok || len(parts) != 3 {
				blocks = append(blocks, e) // decoding reports it
				continue
			}
			s := func(i int) string { v, _ := parts[i].(string); return v }
			if own[filepath.Clean(s(2))] {
				warnings = append(warnings, fmt.Sprintf("chroot_mounts: %s is mounted by strata-chroot itself; the entry %v is ignored", s(2), parts))
				continue
			}
			blocks = append(blocks, map[string]interface{}{"type": s(0), "source": s(1), "target": s(2)})
		}
		m["chroot_mounts"] = blocks
	}
	return warnings
}

// stringKeyed copies a raw config map (Packer hands JSON templates' configs
// over RPC as map[interface{}]interface{}) into a map with string keys; nil
// when raw is no map.
func stringKeyed(raw interface{}) map[string]interface{} {
	switch m := raw.(type) {
	case map[string]interface{}:
		out := make(map[string]interface{}, len(m))
		for k, v := range m {
			out[k] = v
		}
		return out
	case map[interface{}]interface{}:
		out := make(map[string]interface{}, len(m))
		for k, v := range m {
			if ks, ok := k.(string); ok {
				out[ks] = v
			}
		}
		return out
	}
	return nil
}
