# Benchmark template: a bookworm minbase image as tar.zst, nothing else
# (minimized unless minimize = false).
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
variable "minimize" {
  type    = bool
  default = true
}

source "strata-chroot" "bench" {
  bootstrap {
    suite  = "bookworm"
    mirror = var.mirror
  }
  store_dir         = var.store_dir
  package_cache {
    dir = var.cache_dir
  }
  formats           = ["tar.zst"]
  minimize {
    enabled = var.minimize
  }
}

build {
  sources = ["source.strata-chroot.bench"]
}
