# An application image built on the base image: one layer with the app's
# packages and configuration, on the base's layers (nothing of the base is
# copied). Pass the base's image ID: packer build -var base=sha256:... app.pkr.hcl
packer {
  required_plugins {
    strata = {
      source  = "github.com/strata-build/strata"
      version = ">= 0.1.0"
    }
  }
}

variable "base" {
  type        = string
  description = "the base image's ID (artifact.json's image_id of base.pkr.hcl)"
}

source "strata-chroot" "app" {
  parent  = var.base
  formats = ["oci", "tar.zst"]
  labels  = { "org.example.app" = "hello" }
}

build {
  sources = ["source.strata-chroot.app"]

  provisioner "shell" {
    inline = [
      "apt-get update",
      "apt-get install -y --no-install-recommends nginx-light",
      "printf 'server { listen 8080; root /srv/www; }\\n' > /etc/nginx/sites-available/default",
      "mkdir -p /srv/www && echo hello > /srv/www/index.html",
    ]
  }
}
