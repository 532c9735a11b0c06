# ported-amazon-original.pkr.hcl, ported: only the source block's options
# changed, as the hints said (source_ami_filter -> source_archive here, a
# parent or bootstrap {} elsewhere; ami_name and tags -> strata-catalog;
# region and ena_support removed; mount_path without {{.Device}}). The list
# form of chroot_mounts stays as it was.
packer {
  required_plugins {
    strata = {
      source  = "github.com/strata-build/strata"
      version = ">= 0.1.0"
    }
  }
}

variable "store_dir" { type = string }
variable "archive" { type = string }
variable "mount_path" { type = string }

source "strata-chroot" "web" {
  store_dir      = var.store_dir
  source_archive = var.archive
  formats        = ["dir"]
  mount_path     = var.mount_path
  chroot_mounts = [["proc", "proc", "/proc"], ["sysfs", "sysfs", "/sys"], ["bind", "/dev", "/dev"], ["devpts", "devpts", "/dev/pts"], ["binfmt_misc", "binfmt_misc", "/proc/sys/fs/binfmt_misc"], ["tmpfs", "tmpfs", "/var/tmp/build"]]
  pre_mount_commands  = ["echo mounting at {{ .MountPath }}"]
  post_mount_commands = ["touch {{ .MountPath }}/../post_mount.marker"]
  command_wrapper     = "env PORTED=yes {{ .Command }}"
}

build {
  sources = ["source.strata-chroot.web"]

  provisioner "shell" {
    inline = [
      "set -e",
      "test \"$PORTED\" = yes",
      "mountpoint -q /var/tmp/build",
      "echo 'web server' > /etc/motd",
    ]
  }
  post-processor "manifest" {
    output = "manifest.json"
  }
}
