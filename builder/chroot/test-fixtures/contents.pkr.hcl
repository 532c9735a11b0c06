# A build from a rootfs tarball with the content rules and minimize options
# from variables.
packer {
  required_plugins {
    strata = {
      source  = "github.com/strata-build/strata"
      version = ">= 0.1.0"
    }
  }
}

variable "store_dir" { type = string }
variable "archive" { type = string }
variable "inline" { type = list(string) }
variable "allowed_packages" {
  type    = list(string)
  default = []
}
variable "denied_packages" {
  type    = list(string)
  default = []
}
variable "allowed_setuid" {
  type    = list(string)
  default = null
}
variable "allowed_setuid_extra" {
  type    = list(string)
  default = []
}
variable "cache_dir" {
  type    = string
  default = ""
}
variable "strip_setuid" {
  type    = bool
  default = false
}
variable "remove_packages" {
  type    = list(string)
  default = []
}
variable "remove_files" {
  type    = list(string)
  default = []
}
variable "force" {
  type    = bool
  default = false
}

source "strata-chroot" "contents" {
  source_archive   = var.archive
  store_dir        = var.store_dir
  formats          = ["tar"]
  allowed_packages = var.allowed_packages
  denied_packages  = var.denied_packages
  allowed_setuid   = var.allowed_setuid
  strip_setuid     = var.strip_setuid

  allowed_setuid_extra = var.allowed_setuid_extra
  package_cache {
    dir = var.cache_dir
  }
  minimize {
    remove_packages = var.remove_packages
    remove_files    = var.remove_files
    force           = var.force
  }
}

build {
  sources = ["source.strata-chroot.contents"]
  provisioner "shell" {
    inline = var.inline
  }
}
