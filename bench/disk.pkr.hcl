# Benchmark template: a bootable bookworm minbase (linux-image-cloud-amd64,
# systemd-sysv) as a disk image, minimized unless minimize = false; with
# dir = true also the tree (for the export comparison).
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
variable "dir" {
  type    = bool
  default = false
}

source "strata-chroot" "bench" {
  bootstrap {
    suite   = "bookworm"
    mirror  = var.mirror
    include = ["linux-image-cloud-amd64", "systemd-sysv"]
  }
  store_dir = var.store_dir
  package_cache {
    dir = var.cache_dir
  }
  formats = var.dir ? ["disk", "dir"] : ["disk"]
  minimize {
    enabled = var.minimize
  }
}

build {
  sources = ["source.strata-chroot.bench"]
}
