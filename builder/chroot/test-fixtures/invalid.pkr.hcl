# Every option wrong at once: the build must name each and touch nothing.
packer {
  required_plugins {
    strata = {
      source  = "github.com/strata-build/strata"
      version = ">= 0.1.0"
    }
  }
}

variable "store_dir" { type = string }

source "strata-chroot" "bad" {
  bootstrap {
    suite   = "bookworm"
    variant = "tiny"
    mirror  = "not-a-url"
  }
  source_archive  = "/nonexistent/rootfs.tar.zst"
  store_dir       = var.store_dir
  formats         = ["zip"]
  resolv_conf     = "host"
  ext4_free_space = "lots"
  output_dir      = var.store_dir
  command_wrapper = "sudo true"
  copy_files      = ["/etc/resolv.conf"]
  chroot_mounts {
    type   = "tmpfs"
    target = "/proc"
  }
  chroot_mounts {
    type   = "tmpfs"
    target = "/dev/shm"
  }
}

build {
  sources = ["source.strata-chroot.bad"]
}
