# strata-test end to end: a bookworm minbase (or the tree of an earlier
# build's tarball), tested by strata-test with the checks var.checks lists,
# then registered by strata-catalog.
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
variable "catalog" { type = string }
variable "name" { type = string }
variable "archive" {
  type    = string
  default = ""
}
variable "work_dir" {
  type    = string
  default = ""
}
variable "include" {
  type    = list(string)
  default = []
}
variable "formats" {
  type    = list(string)
  default = ["tar.zst"]
}
variable "inline" {
  type    = list(string)
  default = ["true"]
}
variable "mode" {
  type    = string
  default = "container"
}
variable "on_failure" {
  type    = string
  default = "fail"
}
variable "channels" {
  type    = list(string)
  default = ["dev"]
}
# Each a map of a check's attributes (strings).
variable "checks" { type = list(map(string)) }

source "strata-chroot" "t" {
  dynamic "bootstrap" {
    for_each = var.archive == "" ? [1] : []
    content {
      suite   = "bookworm"
      include = var.include
    }
  }
  source_archive = var.archive
  store_dir      = var.store_dir
  work_dir       = var.work_dir
  package_cache {
    dir = var.cache_dir
  }
  formats = var.formats
}

build {
  sources = ["source.strata-chroot.t"]

  provisioner "shell" {
    inline = var.inline
  }

  post-processors {
    post-processor "strata-test" {
      mode          = var.mode
      on_failure    = var.on_failure
      check_timeout = "60s"
      accel         = "tcg"
      dynamic "check" {
        for_each = var.checks
        content {
          name           = check.value.name
          command        = try(check.value.command, null)
          exit_code      = try(check.value.exit_code, null)
          output_matches = try(check.value.output_matches, null)
          service        = try(check.value.service, null)
          listening      = try(check.value.listening, null)
          http           = try(check.value.http, null)
          scripts        = try(check.value.scripts, null) == null ? null : [check.value.scripts]
          timeout        = try(check.value.timeout, null)
        }
      }
    }
    post-processor "strata-catalog" {
      catalog         = var.catalog
      image_name      = var.name
      channels        = var.channels
      allow_duplicate = true
    }
  }
}
