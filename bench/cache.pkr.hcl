# Benchmark template: a minbase bootstrap and apt-get install python3 in a
# provisioner, through the package cache at cache_dir.
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
variable "mirror" { type = string }

source "strata-chroot" "cache" {
  bootstrap {
    suite  = "bookworm"
    mirror = var.mirror
  }
  store_dir = var.store_dir
  package_cache {
    dir = var.cache_dir
  }
  formats = ["tar"]
}

build {
  sources = ["source.strata-chroot.cache"]

  provisioner "shell" {
    inline = ["apt-get update -qq", "apt-get install -y -qq --no-install-recommends python3 >/dev/null", "python3 --version"]
  }
}
