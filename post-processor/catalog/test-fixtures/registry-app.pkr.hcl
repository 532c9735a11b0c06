# Host B of the two-host test: app on the base the dev channel holds, its
# layers pulled from the registry through the data source; pushed too.
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

data "strata-image" "base" {
  catalog             = var.catalog
  store_dir           = var.store_dir
  name                = "base-os"
  channel             = "dev"
  insecure_registries = [var.registry]
}

source "strata-chroot" "app" {
  parent      = data.strata-image.base.image_id
  parent_name = "base-os:${data.strata-image.base.version}"
  store_dir   = var.store_dir
  package_cache {
    dir = var.cache_dir
  }
  formats = ["dir"]
}

build {
  sources = ["source.strata-chroot.app"]

  provisioner "shell" {
    inline = [
      "test \"$(cat /etc/strata-host)\" = 'built on host A'",
      "mkdir -p /srv/app && echo 'app built on host B' > /srv/app/index.html",
      "rm /etc/strata-host",
    ]
  }

  post-processor "strata-catalog" {
    catalog             = var.catalog
    image_name          = "app"
    version             = "1.0.0"
    channels            = ["dev"]
    push                = ["${var.registry}/team/app"]
    insecure_registries = [var.registry]
  }
}
