# bench/test.sh: an image with a kernel and systemd (a disk and its
# tarball), tested by strata-test in the mode the bench asks for. With
# var.archive, the same tree from the first build's tarball.
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
variable "mode" { type = string }
variable "archive" {
  type    = string
  default = ""
}

source "strata-chroot" "bench" {
  dynamic "bootstrap" {
    for_each = var.archive == "" ? [1] : []
    content {
      suite   = "bookworm"
      mirror  = var.mirror
      include = ["linux-image-cloud-amd64", "systemd-sysv"]
    }
  }
  source_archive = var.archive
  store_dir      = var.store_dir
  package_cache {
    dir = var.cache_dir
  }
  formats = ["disk", "tar.zst"]
}

build {
  sources = ["source.strata-chroot.bench"]

  post-processor "strata-test" {
    mode = var.mode
    check {
      name    = "journald"
      service = "systemd-journald"
    }
    check {
      name           = "os-release"
      command        = "cat /etc/os-release"
      output_matches = "bookworm"
    }
    check {
      name    = "passwd"
      command = "getent passwd root"
    }
  }
}
