# One source used twice in one build under two names, built in parallel
# (Packer's default): each needs its own work dir and output dir.
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

source "strata-chroot" "base" {
  source_archive = var.archive
  store_dir      = var.store_dir
  formats        = ["tar"]
}

build {
  source "source.strata-chroot.base" {
    name = "one"
  }
  source "source.strata-chroot.base" {
    name = "two"
  }

  # Long enough that the two builds overlap.
  provisioner "shell" {
    inline = ["echo ${source.name} > /etc/which-source", "sleep 5"]
  }
}
