# Benchmark template: jq and a config file, either on a parent image in the
# store (a child build: one new layer) or bootstrapped from scratch (the
# full rebuild of the same result). Both write an OCI image.
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
variable "parent" {
  type    = string
  default = ""
}
variable "base_only" {
  type    = bool
  default = false
}

source "strata-chroot" "bench" {
  parent = var.parent
  dynamic "bootstrap" {
    for_each = var.parent == "" ? [1] : []
    content {
      suite  = "bookworm"
      mirror = var.mirror
    }
  }
  store_dir         = var.store_dir
  package_cache {
    dir = var.cache_dir
  }
  formats           = ["oci"]
}

build {
  sources = ["source.strata-chroot.bench"]

  provisioner "shell" {
    inline = var.base_only ? ["true"] : [
      "apt-get update -qq",
      "apt-get install -y -qq --no-install-recommends jq >/dev/null",
      "printf '{\"service\": \"bench\", \"level\": 3}\\n' > /etc/bench.json",
    ]
  }
}
