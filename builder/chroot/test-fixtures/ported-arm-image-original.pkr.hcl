# An arm-image template as its users write it (a Raspberry Pi OS image with
# SSH on), with only the builder's name changed to strata-chroot: every
# option strata lacks must fail the build before anything is mounted, each
# with its hint. ported-arm-image.pkr.hcl is the same template ported.
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

source "strata-chroot" "raspios" {
  store_dir                = var.store_dir
  iso_url                  = "https://downloads.example.invalid/raspios_lite_arm64.img.xz"
  iso_checksum             = "sha256:0000000000000000000000000000000000000000000000000000000000000000"
  image_type               = "raspberrypi"
  image_arch               = "arm64"
  qemu_binary              = "qemu-aarch64-static"
  output_filename          = "output-raspios/image"
  target_image_size        = 4294967296
  image_mounts             = ["/boot/firmware", "/"]
  additional_chroot_mounts = [["bind", "/run/systemd", "/run/systemd"]]
  image_chroot_env         = ["DEBIAN_FRONTEND=noninteractive"]
  resolv-conf              = "off"
}

build {
  sources = ["source.strata-chroot.raspios"]

  provisioner "shell" {
    inline = [
      "set -e",
      "test \"$DEBIAN_FRONTEND\" = noninteractive",
      "mkdir -p /boot/firmware && touch /boot/firmware/ssh",
      "echo raspios > /etc/hostname",
    ]
  }
}
