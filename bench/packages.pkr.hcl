# Benchmark template: the child of bench/layers.pkr.hcl with jq installed by
# strata-packages (shared package indexes; update = "auto" by default)
# instead of a shell apt-get, and the same config file.
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
variable "lock_file" {
  type    = string
  default = ""
}
variable "formats" {
  type    = list(string)
  default = ["oci"]
}
variable "update" {
  type    = string
  default = "auto"
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

  provisioner "strata-packages" {
    install   = ["jq"]
    update    = var.update
    lock_file = var.lock_file
  }
  provisioner "shell" {
    inline = ["printf '{\"service\": \"bench\", \"level\": 3}\\n' > /etc/bench.json"]
  }
}
