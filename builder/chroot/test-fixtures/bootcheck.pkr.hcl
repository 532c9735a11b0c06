# The boot check end to end: a bookworm minbase with a kernel and systemd as
# init, exported as a disk and booted under QEMU (TCG: the check must not
# depend on KVM working). With var.archive, the same tree from a tarball
# with a kernel command line of the test's choosing (a panic).
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
variable "archive" {
  type    = string
  default = ""
}
variable "cmdline" {
  type    = string
  default = ""
}
variable "formats" {
  type    = list(string)
  default = ["disk"]
}
variable "timeout" {
  type    = string
  default = "5m"
}

source "strata-chroot" "server" {
  dynamic "bootstrap" {
    for_each = var.archive == "" ? [1] : []
    content {
      suite   = "bookworm"
      include = ["linux-image-cloud-amd64", "systemd-sysv"]
    }
  }
  source_archive = var.archive
  store_dir      = var.store_dir
  package_cache {
    dir = var.cache_dir
  }
  formats = var.formats
  disk {
    kernel_cmdline = var.cmdline
  }
  bootcheck {
    enabled = true
    accel   = "tcg"
    timeout = var.timeout
  }
}

build {
  sources = ["source.strata-chroot.server"]
}
