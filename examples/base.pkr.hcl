# The example base image: Debian bookworm minbase with CA certificates,
# minimized, registered in the catalog as base-os and put on the dev
# channel. Change `release` to publish a new version of it.
#   packer build base.pkr.hcl
packer {
  required_plugins {
    strata = {
      source  = "github.com/strata-build/strata"
      version = ">= 0.1.0"
    }
  }
}

variable "suite" {
  type    = string
  default = "bookworm"
}
variable "release" {
  type        = string
  default     = "1"
  description = "written to /etc/strata-release; a new value makes a new image"
}
variable "channels" {
  type        = list(string)
  default     = ["dev"]
  description = "the channels the new version goes on"
}
variable "store_dir" {
  type        = string
  default     = ""
  description = "the store; empty: $STRATA_HOME, else /var/lib/strata"
}
variable "catalog" {
  type        = string
  default     = ""
  description = "the catalog URL; empty: $STRATA_CATALOG, else the store's embedded SQLite catalog"
}
variable "package_cache_dir" {
  type        = string
  default     = ""
  description = "the package cache; empty: the store's"
}

source "strata-chroot" "base-os" {
  bootstrap {
    suite   = var.suite
    include = ["ca-certificates"]
  }
  store_dir = var.store_dir
  package_cache {
    dir = var.package_cache_dir
  }
  # One directory a release, so publishing release 2 leaves release 1's.
  output_dir = "output-base-os-${var.release}"
  formats    = ["tar.zst"]
  labels     = { "org.example.release" = var.release }
}

build {
  sources = ["source.strata-chroot.base-os"]

  provisioner "shell" {
    inline = [
      "echo 'base-os release ${var.release}, built by strata' > /etc/strata-release",
      "echo packages: $(dpkg-query -W | wc -l)",
    ]
  }

  post-processor "strata-catalog" {
    catalog     = var.catalog
    image_name  = "base-os"
    channels    = var.channels
    description = "Debian ${var.suite} minbase with CA certificates, release ${var.release}"
    labels      = { suite = var.suite, release = var.release }
  }

  # build.* variables reach post-processors too.
  post-processor "shell-local" {
    inline = ["echo 'base-os image ${build.ImageID} in ${build.OutputDir}'"]
  }
}
