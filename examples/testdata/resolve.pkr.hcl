# Asks the strata-image data source and writes its whole answer as JSON to
# var.out: the walk-through test checks it at each step.
packer {
  required_plugins {
    strata = {
      source  = "github.com/strata-build/strata"
      version = ">= 0.1.0"
    }
  }
}

variable "catalog" { type = string }
variable "store_dir" { type = string }
variable "name" { type = string }
variable "out" { type = string }
variable "channel" {
  type    = string
  default = ""
}
variable "version" {
  type    = string
  default = ""
}
variable "tag" {
  type    = string
  default = ""
}

data "strata-image" "x" {
  catalog   = var.catalog
  store_dir = var.store_dir
  name      = var.name
  channel   = var.channel
  version   = var.version
  tag       = var.tag
}

source "null" "x" {
  communicator = "none"
}

build {
  sources = ["source.null.x"]
  provisioner "shell-local" {
    inline = ["echo '${jsonencode(data.strata-image.x)}' > ${var.out}"]
  }
}
