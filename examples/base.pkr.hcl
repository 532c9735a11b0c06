# The example base image: Debian bookworm minbase with CA certificates, as
# tar.zst and squashfs. `make demo` builds it.
packer {
  required_plugins {
    strata = {
      source  = "github.com/strata-build/strata"
      version = ">= 0.1.0"
    }
  }
}

variable "suite" {
  type    = string
  default = "bookworm"
}

source "strata-chroot" "base-os" {
  bootstrap {
    suite   = var.suite
    include = ["ca-certificates"]
  }
  formats = ["tar.zst", "squashfs"]
}

build {
  sources = ["source.strata-chroot.base-os"]

  provisioner "shell" {
    inline = [
      "echo 'base-os built by strata' > /etc/strata-release",
      "echo packages: $(dpkg-query -W | wc -l)",
    ]
  }
}
