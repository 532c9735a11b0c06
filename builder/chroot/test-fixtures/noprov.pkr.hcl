# A build from a rootfs tarball with no provisioner at all: what comes out
# must be the archive's tree, bit for bit, every time.
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
variable "formats" {
  type    = list(string)
  default = ["tar"]
}
variable "output_dir" {
  type    = string
  default = ""
}

source "strata-chroot" "plain" {
  source_archive = var.archive
  store_dir      = var.store_dir
  formats        = var.formats
  output_dir     = var.output_dir
}

build {
  sources = ["source.strata-chroot.plain"]
}
