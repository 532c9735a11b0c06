# Attacks on a running build. Inside the image, an unprivileged process
# keeps (re)writing the script path the next shell provisioner uploads to,
# hoping its content runs as root. On the host, the nobody user tries to
# reach the work dir, the image's world-writable /tmp and the store. The
# build fails if any attack gets through.
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

source "strata-chroot" "attack" {
  source_archive = var.archive
  store_dir      = var.store_dir
  formats        = ["tar"]
}

build {
  sources = ["source.strata-chroot.attack"]

  provisioner "shell" {
    inline = [
      "setpriv --reuid=65534 --regid=65534 --clear-groups sh -c 'while :; do printf \"#!/bin/sh\\ntouch /tmp/pwned\\n\" > /tmp/evil.sh; chmod 777 /tmp/evil.sh; done' >/dev/null 2>&1 &",
      "sleep 1",
      "ls -l /tmp/evil.sh",
    ]
  }

  provisioner "shell" {
    remote_folder = "/tmp"
    remote_file   = "evil.sh"
    inline        = ["touch /root/legit"]
  }

  provisioner "shell" {
    inline = ["sleep 1", "test -f /root/legit", "test ! -e /tmp/pwned"]
  }

  provisioner "shell-local" {
    inline = [
      "as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups sh -c \"$1\" >/dev/null 2>&1; }",
      "if as_nobody 'ls ${build.WorkDir}'; then echo 'nobody listed the work dir'; exit 1; fi",
      "if as_nobody 'touch ${build.MountPath}/tmp/planted'; then echo 'nobody wrote into the image /tmp'; exit 1; fi",
      "if as_nobody 'ls ${var.store_dir}'; then echo 'nobody listed the store'; exit 1; fi",
      "echo host attacks refused",
    ]
  }
}
