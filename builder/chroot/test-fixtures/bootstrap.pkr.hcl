# The end-to-end base build: bookworm minbase, every output format, hooks,
# an extra mount, environment, command_wrapper, and files both ways.
packer {
  required_plugins {
    strata = {
      source  = "github.com/strata-build/strata"
      version = ">= 0.1.0"
    }
  }
}

variable "store_dir" { type = string }
variable "cache_dir" { type = string }
variable "upload_src" { type = string }
variable "download_dst" { type = string }

source "strata-chroot" "base" {
  bootstrap {
    suite = "bookworm"
  }
  store_dir         = var.store_dir
  package_cache {
    dir = var.cache_dir
  }
  formats           = ["dir", "tar", "tar.gz", "tar.zst", "squashfs", "ext4"]
  ext4_free_space   = "32M"
  environment       = { STRATA_TEST = "env-ok" }
  command_wrapper   = "env STRATA_WRAPPED=yes {{ .Command }}"

  chroot_mounts {
    type    = "tmpfs"
    target  = "/var/tmp/scratch"
    options = "size=16m"
  }
  chroot_mounts {
    type    = "bind"
    source  = dirname(var.upload_src)
    target  = "/mnt/host"
    options = "ro"
  }
  pre_mount_commands   = ["touch {{ .MountPath }}/../pre_mount.marker"]
  post_mount_commands  = ["mountpoint -q {{ .MountPath }}/proc && touch {{ .MountPath }}/../post_mount.marker"]
  pre_unmount_commands = ["test -f $MOUNT_PATH/root/hello.txt && touch {{ .MountPath }}/../pre_unmount.marker"]
}

build {
  sources = ["source.strata-chroot.base"]

  provisioner "file" {
    source      = var.upload_src
    destination = "/root/uploaded.txt"
  }

  provisioner "shell" {
    inline = [
      "set -e",
      "test \"$STRATA_TEST\" = env-ok",
      "test \"$STRATA_WRAPPED\" = yes",
      "mountpoint -q /var/tmp/scratch",
      "test -f /mnt/host/upload.txt && ! touch /mnt/host/written-from-chroot 2>/dev/null",
      "mountpoint -q /proc && mountpoint -q /dev/pts && mountpoint -q /run",
      "test -c /dev/null && test -e /dev/pts/ptmx",
      "rc=0; /usr/sbin/policy-rc.d || rc=$?; test $rc -eq 101",
      "grep -q nameserver /etc/resolv.conf",
      "apt-get --version | head -n1",
      "echo hello > /root/hello.txt",
    ]
  }

  # On the host, with the builder's generated data.
  provisioner "shell-local" {
    inline = [
      "test -f ${build.MountPath}/root/hello.txt",
      "touch ${build.WorkDir}/shell_local.marker",
    ]
  }

  provisioner "file" {
    direction   = "download"
    source      = "/root/hello.txt"
    destination = var.download_dst
  }
}
