# A build that installs packages from a local test repository through the
# package cache. The image's own Debian sources are removed first, so apt
# talks to the test repository only.
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
variable "cache_dir" { type = string }
variable "repo_url" { type = string }
variable "key_file" { type = string }
variable "inline" { type = list(string) }
variable "offline" {
  type    = bool
  default = false
}
variable "snapshot" {
  type    = string
  default = ""
}
variable "upstream_proxy" {
  type    = string
  default = ""
}

source "strata-chroot" "repo" {
  source_archive = var.archive
  store_dir      = var.store_dir
  formats        = ["tar"]
  package_cache {
    dir            = var.cache_dir
    offline        = var.offline
    snapshot       = var.snapshot
    upstream_proxy = var.upstream_proxy
    keyrings       = [var.key_file]
  }
}

build {
  sources = ["source.strata-chroot.repo"]

  provisioner "file" {
    source      = var.key_file
    destination = "/etc/apt/keyrings/strata-test.gpg"
  }
  provisioner "shell" {
    inline = concat([
      "rm -f /etc/apt/sources.list /etc/apt/sources.list.d/*",
      "echo 'deb [signed-by=/etc/apt/keyrings/strata-test.gpg] ${var.repo_url} stable main' > /etc/apt/sources.list.d/strata-test.list",
    ], var.inline)
  }
}
