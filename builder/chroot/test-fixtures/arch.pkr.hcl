# A foreign-architecture build: an arm64 (by default) minbase bootstrap, or
# a child on a parent image, checked from inside by a shell provisioner.
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
variable "architecture" {
  type    = string
  default = "arm64"
}
variable "parent" {
  type    = string
  default = ""
}
variable "uname" {
  type    = string
  default = "aarch64"
}

source "strata-chroot" "base" {
  bootstrap {
    suite = "bookworm"
  }
  architecture = var.architecture
  store_dir    = var.store_dir
  package_cache {
    dir = var.cache_dir
  }
  formats = ["oci"]
}

source "strata-chroot" "child" {
  parent       = var.parent
  architecture = var.architecture
  store_dir    = var.store_dir
  package_cache {
    dir = var.cache_dir
  }
  formats = ["tar"]
}

build {
  sources = ["source.strata-chroot.base", "source.strata-chroot.child"]

  provisioner "shell" {
    inline = [
      "set -e",
      "test \"$(dpkg --print-architecture)\" = ${var.architecture}",
      "test \"$(uname -m)\" = ${var.uname}",
      # No emulator copied in: the kernel holds it open (binfmt F flag).
      "! ls /usr/bin/qemu-* /usr/libexec/qemu-binfmt 2>/dev/null",
      "echo ${source.name} > /etc/strata-arch-test",
    ]
  }
}
