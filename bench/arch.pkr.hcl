# Benchmark template: a bookworm minbase of the given architecture as
# tar.zst, not minimized.
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
variable "architecture" { type = string }

source "strata-chroot" "bench" {
  bootstrap {
    suite  = "bookworm"
    mirror = var.mirror
  }
  architecture = var.architecture
  store_dir    = var.store_dir
  package_cache {
    dir = var.cache_dir
  }
  formats = ["tar.zst"]
  minimize {
    enabled = false
  }
}

build {
  sources = ["source.strata-chroot.bench"]
}
