# A child of the disk base: more packages, exported as a disk
# with the given root file system, boot loader and kernel command line, and
# boot-checked.
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
variable "parent" { type = string }
variable "install" { type = list(string) }
variable "root_filesystem" {
  type    = string
  default = "ext4"
}
variable "bootloader" {
  type    = string
  default = "systemd-boot"
}
variable "kernel_cmdline" {
  type    = string
  default = ""
}
variable "qcow2" {
  type    = bool
  default = false
}
variable "output_dir" {
  type    = string
  default = "output-child"
}
variable "bootcheck_timeout" {
  type    = string
  default = "240s"
}

source "strata-chroot" "child" {
  parent      = var.parent
  parent_name = "disk-base"
  store_dir   = var.store_dir
  output_dir  = var.output_dir
  package_cache {
    dir = var.cache_dir
  }
  formats           = ["disk"]
  source_date_epoch = 1700000000
  disk {
    root_filesystem = var.root_filesystem
    bootloader      = var.bootloader
    kernel_cmdline  = var.kernel_cmdline
    qcow2           = var.qcow2
  }
  bootcheck {
    enabled = true
    timeout = var.bootcheck_timeout
  }
}

build {
  sources = ["source.strata-chroot.child"]

  provisioner "strata-packages" {
    install = var.install
  }
}
