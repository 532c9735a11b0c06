# Benchmark template: jq and a config file, either on a parent image in the
# store (a child build: one new layer), on the parent's rootfs tarball
# (source_archive: the same steps on a full copy of the base, the
# amazon-chroot pattern) or bootstrapped from scratch (the full rebuild of
# the same result). All write an OCI image. The same child with
# strata-packages is bench/packages.pkr.hcl.
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
variable "archive" {
  type    = string
  default = ""
}
variable "base_only" {
  type    = bool
  default = false
}
variable "formats" {
  type    = list(string)
  default = ["oci"]
}

source "strata-chroot" "bench" {
  parent         = var.parent
  source_archive = var.archive
  dynamic "bootstrap" {
    for_each = var.parent == "" && var.archive == "" ? [1] : []
    content {
      suite  = "bookworm"
      mirror = var.mirror
    }
  }
  store_dir = var.store_dir
  package_cache {
    dir = var.cache_dir
  }
  formats = var.formats
}

build {
  sources = ["source.strata-chroot.bench"]

  provisioner "shell" {
    inline = var.base_only ? ["true"] : [
      "t=$(date +%s%N); apt-get update -qq; echo \"bench: apt-get update $(( ($(date +%s%N) - t) / 1000000 )) ms\"",
      "t=$(date +%s%N); apt-get install -y -qq --no-install-recommends jq >/dev/null; echo \"bench: apt-get install $(( ($(date +%s%N) - t) / 1000000 )) ms\"",
      "printf '{\"service\": \"bench\", \"level\": 3}\\n' > /etc/bench.json",
    ]
  }
}
