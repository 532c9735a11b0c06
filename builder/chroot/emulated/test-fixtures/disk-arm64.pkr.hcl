# An arm64 disk that boots: a bookworm minbase for arm64 (through qemu-user),
# minimized, with Debian's arm64 cloud kernel, systemd as init and the
# image's own systemd-boot (systemd-bootaa64.efi from systemd-boot-efi),
# exported as a disk and boot-checked under qemu-system-aarch64 with AAVMF
# (TCG: no KVM for a foreign architecture).
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
variable "formats" {
  type    = list(string)
  default = ["disk"]
}
variable "bootcheck" {
  type    = bool
  default = true
}

source "strata-chroot" "arm64disk" {
  bootstrap {
    suite = "bookworm"
  }
  architecture = "arm64"
  store_dir    = var.store_dir
  package_cache {
    dir = var.cache_dir
  }
  formats           = var.formats
  source_date_epoch = 1700000000
  bootcheck {
    enabled = var.bootcheck
    timeout = "15m"
  }
}

build {
  sources = ["source.strata-chroot.arm64disk"]

  # initramfs-tools before the kernel: installed together, the kernel's
  # postinst makes its initramfs and initramfs-tools' trigger makes it
  # again, and each takes minutes under qemu-user.
  provisioner "strata-packages" {
    install = ["systemd-sysv", "systemd-boot-efi", "initramfs-tools"]
  }
  provisioner "strata-packages" {
    install = ["linux-image-cloud-arm64"]
  }
}
