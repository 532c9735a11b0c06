# ported-arm-image-original.pkr.hcl, ported: only the source block's
# options changed, as the hints said (iso_url -> source_archive; the
# architecture options removed: this host's architecture;
# output_filename and target_image_size -> output_dir, formats and
# ext4_free_space; image_chroot_env -> environment; resolv-conf "off" ->
# resolv_conf "none"; additional_chroot_mounts -> chroot_mounts, list form).
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
variable "host_dir" { type = string }

source "strata-chroot" "raspios" {
  store_dir       = var.store_dir
  source_archive  = var.archive
  output_dir      = "output-raspios"
  formats         = ["ext4"]
  ext4_free_space = "16M"
  chroot_mounts   = [["bind", var.host_dir, "/mnt/host"]]
  environment     = { DEBIAN_FRONTEND = "noninteractive" }
  resolv_conf     = "none"
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
