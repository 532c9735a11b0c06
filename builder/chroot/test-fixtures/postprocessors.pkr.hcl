# Packer's own post-processors after strata-chroot: checksum, compress and
# manifest take the artifact's files, whatever the formats.
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
variable "formats" { type = list(string) }

source "strata-chroot" "pp" {
  source_archive  = var.archive
  store_dir       = var.store_dir
  formats         = var.formats
  ext4_free_space = "8M"
}

build {
  sources = ["source.strata-chroot.pp"]

  post-processor "checksum" {
    checksum_types = ["sha256"]
    output         = "checksums/{{.ChecksumType}}.txt"
  }
  post-processor "compress" {
    output            = "compressed/image.tar.gz"
    compression_level = 1
  }
  post-processor "manifest" {
    output = "manifest.json"
  }
}
