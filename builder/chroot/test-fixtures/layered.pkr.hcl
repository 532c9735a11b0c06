# One build of a layered pipeline: from a rootfs archive or on a parent
# image in the store, running the given commands, writing the given formats.
packer {
  required_plugins {
    strata = {
      source  = "github.com/strata-build/strata"
      version = ">= 0.1.0"
    }
  }
}

variable "store_dir" { type = string }
variable "inline" { type = list(string) }
variable "archive" {
  type    = string
  default = ""
}
variable "parent" {
  type    = string
  default = ""
}
variable "formats" {
  type    = list(string)
  default = ["dir"]
}
variable "output_dir" {
  type    = string
  default = "output"
}
variable "work_dir" {
  type    = string
  default = ""
}
variable "source_date_epoch" {
  type    = number
  default = null
}
variable "oci_compression" {
  type    = string
  default = "gzip"
}
variable "image_version" {
  type    = string
  default = ""
}

source "strata-chroot" "layer" {
  source_archive    = var.archive
  parent            = var.parent
  parent_name       = var.parent == "" ? "" : "test-parent"
  store_dir         = var.store_dir
  work_dir          = var.work_dir
  formats           = var.formats
  oci_compression   = var.oci_compression
  output_dir        = var.output_dir
  source_date_epoch = var.source_date_epoch
  image_version     = var.image_version
  labels            = { "org.example.test" = "layered" }
  # The child's steps make /usr/local/bin/capfile setuid on purpose.
  allowed_setuid = [
    "/usr/bin/chage", "/usr/bin/chfn", "/usr/bin/chsh", "/usr/bin/expiry", "/usr/bin/gpasswd", "/usr/bin/mount",
    "/usr/bin/newgrp", "/usr/bin/passwd", "/usr/bin/su", "/usr/bin/umount", "/usr/sbin/unix_chkpwd",
    "/usr/local/bin/capfile",
  ]
}

build {
  sources = ["source.strata-chroot.layer"]

  provisioner "shell" {
    inline = var.inline
  }
}
