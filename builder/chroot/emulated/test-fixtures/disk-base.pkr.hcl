# The end-to-end disk base: bookworm minbase, minimized (the default), with
# the cloud kernel and systemd as init installed through strata-packages and
# the package cache, exported as a bootable disk (ext4 root, systemd-boot)
# and boot-checked under QEMU. Its initramfs also carries the squashfs
# module, so that a child can have a squashfs root.
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
variable "bootcheck" {
  type    = bool
  default = true
}

source "strata-chroot" "kbase" {
  bootstrap {
    suite = "bookworm"
  }
  store_dir = var.store_dir
  package_cache {
    dir = var.cache_dir
  }
  formats           = ["disk"]
  source_date_epoch = 1700000000
  # The disk block's defaults (ext4 root, systemd-boot, free_space 512M):
  # what `strata export --format disk` writes, which must give the same bytes.
  bootcheck {
    enabled = var.bootcheck
    timeout = "240s"
  }
}

build {
  sources = ["source.strata-chroot.kbase"]

  # Before the kernel: its initramfs is made once, with the module. (Not
  # /etc/initramfs-tools/modules: that is a conffile of initramfs-tools.)
  provisioner "shell" {
    inline = [
      "mkdir -p /usr/share/initramfs-tools/modules.d",
      "echo squashfs > /usr/share/initramfs-tools/modules.d/strata-squashfs",
    ]
  }
  provisioner "strata-packages" {
    install = ["linux-image-cloud-amd64", "systemd-sysv"]
  }
}
