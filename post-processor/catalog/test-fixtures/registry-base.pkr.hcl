# Host A of the two-host test: a minbase base image, registered in the shared
# catalog and pushed to the registry (tags: the version and dev).
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
variable "catalog" { type = string }
variable "registry" { type = string }

source "strata-chroot" "base" {
  bootstrap {
    suite = "bookworm"
  }
  store_dir = var.store_dir
  package_cache {
    dir = var.cache_dir
  }
  formats = ["dir"]
}

build {
  sources = ["source.strata-chroot.base"]

  provisioner "shell" {
    inline = ["echo 'built on host A' > /etc/strata-host"]
  }

  post-processor "strata-catalog" {
    catalog             = var.catalog
    image_name          = "base-os"
    version             = "1.0.0"
    channels            = ["dev"]
    push                = ["${var.registry}/team/base-os"]
    insecure_registries = [var.registry]
  }
}
