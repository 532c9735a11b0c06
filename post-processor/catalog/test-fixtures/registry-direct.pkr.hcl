# Host C of the two-host test: a child on a parent named by its image ID
# only, which this host's store lacks: the builder pulls it from the
# registry the catalog ($STRATA_CATALOG) recorded.
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
variable "parent" { type = string }

source "strata-chroot" "direct" {
  parent    = var.parent
  store_dir = var.store_dir
  package_cache {
    dir = var.cache_dir
  }
  formats = ["dir"]
}

build {
  sources = ["source.strata-chroot.direct"]

  provisioner "shell" {
    inline = ["test \"$(cat /etc/strata-host)\" = 'built on host A'"]
  }
}
