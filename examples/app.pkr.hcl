# An application image on the base image a channel holds: one layer with
# nginx-light and its configuration on the base's layers (nothing of the
# base is copied), registered as app with the base as its parent.
#   packer build -var base_channel=production app.pkr.hcl
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

# The base-os version the channel holds; a revoked version, one whose
# content is gone or an empty channel stop the build here.
data "strata-image" "base" {
  catalog   = var.catalog
  store_dir = var.store_dir
  name      = "base-os"
  channel   = var.base_channel
}

source "strata-chroot" "app" {
  parent      = data.strata-image.base.image_id
  parent_name = "base-os:${data.strata-image.base.version}"
  store_dir   = var.store_dir
  package_cache {
    dir = var.package_cache_dir
  }
  # One directory for each base version the app is built on.
  output_dir = "output-app-on-base-os-${data.strata-image.base.version}"
  formats    = ["oci", "tar.zst"]
  labels     = { "org.example.app" = "hello" }
}

build {
  sources = ["source.strata-chroot.app"]

  provisioner "strata-packages" {
    install = ["nginx-light"]
  }
  provisioner "shell" {
    inline = [
      "printf 'server { listen 8080; root /srv/www; }\\n' > /etc/nginx/sites-available/default",
      "mkdir -p /srv/www && echo hello > /srv/www/index.html",
    ]
  }

  post-processors {
    # The image is tested before it is registered: in a throwaway
    # read-only overlay of its layers (container mode: nothing is started),
    # recorded as "tests" evidence that a channel policy can require
    # (strata policy set app production --require tests). A failed check
    # fails the build, and nothing is registered.
    post-processor "strata-test" {
      check {
        name = "nginx-config"
        # minimize removed the logs; the check's writes go to the overlay
        command        = "mkdir -p /var/log/nginx && nginx -t"
        output_matches = "syntax is ok"
      }
      check {
        name           = "home-page"
        command        = "cat /srv/www/index.html"
        output_matches = "^hello"
      }
    }
    post-processor "strata-catalog" {
      catalog     = var.catalog
      image_name  = "app"
      channels    = var.channels
      description = "nginx on base-os ${data.strata-image.base.version}"
      labels      = { base_version = data.strata-image.base.version, base_channel = var.base_channel }
    }
  }
}
