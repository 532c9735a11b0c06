# The file provisioner as amazon-chroot users use it: cp -R semantics for
# directories, files into existing directories, uploads over image symlinks.
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
variable "src" { type = string } # holds tree/ and file.txt
variable "mount_path" {
  type    = string
  default = ""
}

source "strata-chroot" "uploads" {
  source_archive = var.archive
  store_dir      = var.store_dir
  mount_path     = var.mount_path
  formats        = ["dir"]
  post_mount_commands = ["test -d {{ .MountPath }}/etc && touch {{ .MountPath }}/../mount_path_seen"]
}

build {
  sources = ["source.strata-chroot.uploads"]

  provisioner "shell" {
    inline = [
      "mkdir -p /srv/existing",
      "echo old > /etc/app.conf.real && ln -s app.conf.real /etc/app.conf",
      "mkdir -p /opt/linked/sub && echo old > /opt/real-f && ln -s /opt/real-f /opt/linked/sub/f",
    ]
  }
  provisioner "file" {
    source      = "${var.src}/tree"
    destination = "/opt/newdir"
  }
  provisioner "file" {
    source      = "${var.src}/tree"
    destination = "/srv/existing"
  }
  provisioner "file" {
    source      = "${var.src}/tree/"
    destination = "/opt/linked"
  }
  provisioner "file" {
    source      = "${var.src}/file.txt"
    destination = "/srv/existing"
  }
  provisioner "file" {
    source      = "${var.src}/file.txt"
    destination = "/etc/app.conf"
  }
}
