# strata-packages against a local test repository, through the package
# cache: shell commands that prepare the image (var.prepare), then
# strata-packages (install with a lock file, remove, upgrade, hold, update),
# then shell checks.
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
variable "install" { type = list(string) }
variable "remove" {
  type    = list(string)
  default = []
}
variable "hold" {
  type    = list(string)
  default = []
}
variable "upgrade" {
  type    = bool
  default = false
}
variable "update" {
  type    = bool
  default = true
}
variable "prepare" {
  type    = list(string)
  default = []
}
variable "lock_file" {
  type    = string
  default = ""
}
variable "update_lock" {
  type    = bool
  default = false
}
variable "inline" {
  type    = list(string)
  default = ["true"]
}

source "strata-chroot" "pkgs" {
  source_archive = var.archive
  store_dir      = var.store_dir
  formats        = ["tar"]
  package_cache {
    dir      = var.cache_dir
    keyrings = [var.key_file]
  }
}

build {
  sources = ["source.strata-chroot.pkgs"]

  provisioner "file" {
    source      = var.key_file
    destination = "/etc/apt/keyrings/strata-test.gpg"
  }
  provisioner "shell" {
    inline = concat([
      "rm -f /etc/apt/sources.list /etc/apt/sources.list.d/*",
      "echo 'deb [signed-by=/etc/apt/keyrings/strata-test.gpg] ${var.repo_url} stable main' > /etc/apt/sources.list.d/strata-test.list",
    ], var.prepare)
  }
  provisioner "strata-packages" {
    install     = var.install
    remove      = var.remove
    hold        = var.hold
    upgrade     = var.upgrade
    update      = var.update
    lock_file   = var.lock_file
    update_lock = var.update_lock
  }
  provisioner "shell" {
    inline = var.inline
  }
}
