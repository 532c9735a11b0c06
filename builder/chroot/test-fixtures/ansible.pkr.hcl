# Ansible over Packer's SSH proxy onto the chroot communicator: the
# provisioner gathers facts, copies a file and runs commands in the image.
packer {
  required_plugins {
    strata = {
      source  = "github.com/strata-build/strata"
      version = ">= 0.1.0"
    }
    ansible = {
      source  = "github.com/hashicorp/ansible"
      version = ">= 1.0.0"
    }
  }
}

variable "store_dir" { type = string }
variable "archive" { type = string }
variable "playbook" { type = string }

source "strata-chroot" "ansible" {
  source_archive = var.archive
  store_dir      = var.store_dir
  formats        = ["dir"]
}

build {
  sources = ["source.strata-chroot.ansible"]

  # Ansible needs Python in the image.
  provisioner "shell" {
    inline = ["apt-get update -qq", "apt-get install -y -qq --no-install-recommends python3 >/dev/null"]
  }

  provisioner "ansible" {
    playbook_file = var.playbook
    user          = "root"
    # OpenSSH 9 scp speaks SFTP by default; Packer's proxy speaks scp.
    extra_arguments  = ["--scp-extra-args", "'-O'"]
    ansible_env_vars = ["ANSIBLE_HOST_KEY_CHECKING=False", "ANSIBLE_SCP_IF_SSH=True"]
  }
}
