# An amazon-chroot template as its users write it, with only the builder's
# name changed to strata-chroot: every option strata lacks must fail the
# build before anything is mounted, each with its hint.
# ported-amazon.pkr.hcl is the same template ported.
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

source "strata-chroot" "web" {
  store_dir = var.store_dir
  region    = "eu-west-1"
  ami_name  = "web-{{timestamp}}"
  source_ami_filter {
    filters = {
      name = "debian-12-amd64-*"
    }
    owners      = ["136693071363"]
    most_recent = true
  }
  ena_support   = true
  tags          = { team = "web" }
  mount_path    = "/mnt/packer-amazon-chroot-volumes/{{.Device}}"
  chroot_mounts = [["proc", "proc", "/proc"], ["sysfs", "sysfs", "/sys"], ["bind", "/dev", "/dev"], ["devpts", "devpts", "/dev/pts"], ["binfmt_misc", "binfmt_misc", "/proc/sys/fs/binfmt_misc"], ["tmpfs", "tmpfs", "/var/tmp/build"]]
  pre_mount_commands  = ["echo mounting {{ .Device }}"]
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
