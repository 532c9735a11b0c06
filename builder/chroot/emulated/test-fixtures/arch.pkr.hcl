# Foreign architectures: an arm64 and an amd64 minbase built in one packer
# build and registered as one multi-architecture version, and a child on a
# parent image; each checked from inside by a shell provisioner.
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
# "" registers without a version: both sources' builds join one.
variable "version" {
  type    = string
  default = "1.0.0"
}
variable "push" {
  type    = list(string)
  default = []
}
variable "insecure_registries" {
  type    = list(string)
  default = []
}

source "strata-chroot" "base" {
  bootstrap {
    suite = "bookworm"
  }
  architecture = "arm64"
  environment  = { WANT_ARCH = "arm64", WANT_UNAME = "aarch64" }
  store_dir    = var.store_dir
  package_cache {
    dir = var.cache_dir
  }
  formats = ["oci"]
}

source "strata-chroot" "amd64" {
  bootstrap {
    suite = "bookworm"
  }
  architecture = "amd64"
  environment  = { WANT_ARCH = "amd64", WANT_UNAME = "x86_64" }
  store_dir    = var.store_dir
  package_cache {
    dir = var.cache_dir
  }
  formats = ["oci"]
}

source "strata-chroot" "child" {
  parent       = var.parent
  architecture = var.architecture
  environment  = { WANT_ARCH = var.architecture, WANT_UNAME = var.uname }
  store_dir    = var.store_dir
  package_cache {
    dir = var.cache_dir
  }
  formats = ["tar"]
}

build {
  sources = ["source.strata-chroot.base", "source.strata-chroot.amd64"]

  provisioner "shell" {
    inline = [
      "set -e",
      "test \"$(dpkg --print-architecture)\" = \"$WANT_ARCH\"",
      "test \"$(uname -m)\" = \"$WANT_UNAME\"",
      # No emulator copied in: the kernel holds it open (binfmt F flag).
      "! ls /usr/bin/qemu-* /usr/libexec/qemu-binfmt 2>/dev/null",
    ]
  }

  # Both architectures become one version.
  post-processor "strata-catalog" {
    catalog    = "sqlite://${var.store_dir}/catalog.db"
    image_name          = "archbase"
    version             = var.version
    push                = var.push
    insecure_registries = var.insecure_registries
  }
}

build {
  sources = ["source.strata-chroot.child"]

  provisioner "shell" {
    inline = [
      "set -e",
      "test \"$(dpkg --print-architecture)\" = \"$WANT_ARCH\"",
      "test \"$(uname -m)\" = \"$WANT_UNAME\"",
      "! ls /usr/bin/qemu-* /usr/libexec/qemu-binfmt 2>/dev/null",
    ]
  }
}
