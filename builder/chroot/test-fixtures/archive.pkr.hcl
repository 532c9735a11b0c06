# A build from a rootfs tarball, with provisioner commands and options from
# variables, so the failure-path tests can each shape it.
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
variable "inline" { type = list(string) }
variable "resolv_conf" {
  type    = string
  default = "copy-host"
}
variable "prevent_service_start" {
  type    = bool
  default = true
}
variable "formats" {
  type    = list(string)
  default = ["dir"]
}
variable "work_dir" {
  type    = string
  default = ""
}
variable "mount_path" {
  type    = string
  default = ""
}
variable "output_dir" {
  type    = string
  default = ""
}
variable "squashfs_compression" {
  type    = string
  default = ""
}
# A file the error-cleanup-provisioner writes in bind_src, when set.
variable "cleanup_marker" {
  type    = string
  default = ""
}
# A host directory bound read-write at /mnt/hostbind, when set.
variable "bind_src" {
  type    = string
  default = ""
}

source "strata-chroot" "app" {
  source_archive        = var.archive
  store_dir             = var.store_dir
  work_dir              = var.work_dir
  mount_path            = var.mount_path
  output_dir            = var.output_dir
  resolv_conf           = var.resolv_conf
  prevent_service_start = var.prevent_service_start
  formats               = var.formats
  squashfs_compression  = var.squashfs_compression

  dynamic "chroot_mounts" {
    for_each = var.bind_src == "" ? [] : [var.bind_src]
    content {
      type   = "bind"
      source = chroot_mounts.value
      target = "/mnt/hostbind"
    }
  }
}

build {
  sources = ["source.strata-chroot.app"]

  provisioner "shell" {
    inline = var.inline
  }

  # Runs after a failed provisioner, in the chroot, which is still mounted.
  error-cleanup-provisioner "shell" {
    inline = var.cleanup_marker == "" ? ["true"] : ["test -d /proc/self && echo cleanup ran > /mnt/hostbind/${var.cleanup_marker}"]
  }
}
