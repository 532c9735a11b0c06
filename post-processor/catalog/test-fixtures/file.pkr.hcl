# A mixed pipeline: Packer's own file builder, registered by strata-catalog
# from its registry metadata.
packer {
  required_plugins {
    strata = {
      source  = "github.com/strata-build/strata"
      version = ">= 0.1.0"
    }
  }
}

variable "catalog" { type = string }
variable "target" { type = string }
variable "content" { type = string }
variable "version" {
  type    = string
  default = ""
}
variable "keep" {
  type    = bool
  default = true
}

source "file" "disk" {
  content = var.content
  target  = var.target
}

build {
  sources = ["source.file.disk"]
  post-processor "strata-catalog" {
    catalog             = var.catalog
    image_name          = "disk"
    version             = var.version
    channels            = ["dev"]
    keep_input_artifact = var.keep
  }
}
