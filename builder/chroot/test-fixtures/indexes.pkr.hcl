# Shared package indexes: a child of a parent whose only apt source is a
# local test repository installs with strata-packages through the package
# cache.
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
variable "key_file" { type = string }
variable "parent" { type = string }
variable "install" { type = list(string) }
variable "update" {
  type    = string
  default = "auto"
}
variable "update_max_age" {
  type    = string
  default = "1h"
}
variable "offline" {
  type    = bool
  default = false
}
variable "snapshot" {
  type    = string
  default = ""
}

source "strata-chroot" "idx" {
  parent         = var.parent
  parent_name    = "test-parent"
  store_dir      = var.store_dir
  formats        = ["dir", "oci"]
  package_cache {
    dir      = var.cache_dir
    keyrings = [var.key_file]
    offline  = var.offline
    snapshot = var.snapshot
  }
}

build {
  sources = ["source.strata-chroot.idx"]

  provisioner "strata-packages" {
    install        = var.install
    update         = var.update
    update_max_age = var.update_max_age
  }
}
