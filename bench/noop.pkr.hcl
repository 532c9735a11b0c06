# Benchmark template: a no-op child (a parent image, no provisioner, output
# dir or none) — what strata costs on top of Packer for a build that changes
# nothing. bench/null.pkr.hcl is the same shape on Packer's null builder.
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
variable "formats" {
  type    = list(string)
  default = ["dir"]
}

source "strata-chroot" "bench" {
  parent    = var.parent
  store_dir = var.store_dir
  package_cache {
    dir = var.cache_dir
  }
  formats = var.formats
}

build {
  sources = ["source.strata-chroot.bench"]
}
