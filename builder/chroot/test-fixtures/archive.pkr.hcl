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

source "strata-chroot" "app" {
  source_archive = var.archive
  store_dir      = var.store_dir
  resolv_conf    = var.resolv_conf
  prevent_service_start = var.prevent_service_start
  formats        = var.formats
}

build {
  sources = ["source.strata-chroot.app"]

  provisioner "shell" {
    inline = var.inline
  }
}
