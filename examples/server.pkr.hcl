# A bootable server image on the base image a channel holds: Debian's cloud
# kernel and systemd as init as one layer on base-os's layers, exported as a
# GPT/UEFI disk (disk.raw and disk.qcow2), booted under QEMU before the build
# passes, booted again by strata-test to run two checks in it, and
# registered as server with base-os as its parent and the tests' evidence.
#   packer build -var base_channel=production server.pkr.hcl
#   qemu-system-x86_64 -machine q35 -m 1024 -bios /usr/share/ovmf/OVMF.fd -nographic \
#     -drive file=output-server-on-base-os-1.0.0/disk.qcow2,if=virtio
packer {
  required_plugins {
    strata = {
      source  = "github.com/strata-build/strata"
      version = ">= 0.1.0"
    }
  }
}

variable "base_channel" {
  type        = string
  default     = "dev"
  description = "the base-os channel to build on"
}
variable "channels" {
  type    = list(string)
  default = ["dev"]
}
variable "store_dir" {
  type    = string
  default = ""
}
variable "catalog" {
  type    = string
  default = ""
}
variable "package_cache_dir" {
  type    = string
  default = ""
}
variable "disk_size" {
  type        = string
  default     = "2G"
  description = "the whole disk; the root file system takes what the EFI system partition leaves"
}

data "strata-image" "base" {
  catalog   = var.catalog
  store_dir = var.store_dir
  name      = "base-os"
  channel   = var.base_channel
}

source "strata-chroot" "server" {
  parent      = data.strata-image.base.image_id
  parent_name = "base-os:${data.strata-image.base.version}"
  store_dir   = var.store_dir
  package_cache {
    dir = var.package_cache_dir
  }
  output_dir = "output-server-on-base-os-${data.strata-image.base.version}"
  formats    = ["disk"]

  # The kernel is the image's own (installed below); the root is found by
  # its partition UUID.
  disk {
    size            = var.disk_size
    root_filesystem = "ext4"
    bootloader      = "systemd-boot"
    qcow2           = true
  }
  # The build passes only when the disk boots to multi-user.target.
  bootcheck {
    enabled = true
    timeout = "4m"
  }
}

build {
  sources = ["source.strata-chroot.server"]

  provisioner "strata-packages" {
    install = ["linux-image-cloud-amd64", "systemd-sysv"]
  }
  provisioner "shell" {
    inline = ["echo server > /etc/hostname"]
  }

  post-processors {
    # The disk booted again with the checks (vm mode: the disk's own
    # kernel under QEMU, the disk only read), after the builder's boot
    # check above; the result is "tests" evidence on the version.
    post-processor "strata-test" {
      mode    = "vm"
      timeout = "6m"
      check {
        name    = "journald"
        service = "systemd-journald"
      }
      check {
        name           = "hostname"
        command        = "cat /proc/sys/kernel/hostname"
        output_matches = "^server"
      }
    }
    post-processor "strata-catalog" {
      catalog     = var.catalog
      image_name  = "server"
      channels    = var.channels
      description = "bootable server (cloud kernel, systemd) on base-os ${data.strata-image.base.version}"
      labels      = { base_version = data.strata-image.base.version, base_channel = var.base_channel }
    }
  }
}
