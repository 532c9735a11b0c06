# Strata: `make demo` and `make test` are all a fresh Debian machine needs (as root).
SHELL         := /bin/bash
GO            ?= go
BIN           := $(CURDIR)/bin
PACKER        := $(BIN)/packer
PLUGIN        := $(BIN)/packer-plugin-strata
SDC           := $(BIN)/packer-sdc
STRATA        := $(BIN)/strata
PLUGIN_SOURCE := github.com/strata-build/strata
HOST_PACKAGES := mmdebstrap squashfs-tools e2fsprogs postgresql zstd xz-utils tar dpkg qemu-system-x86 ovmf qemu-utils dosfstools mtools fdisk systemd-boot-efi grub-efi-amd64-bin qemu-user-static
# What the end-to-end tests drive besides: Ansible (through packer-plugin-ansible); chromium for strata serve's pages (chromedp).
# qemu-user-static (HOST_PACKAGES) runs a foreign `architecture`; arch-test, qemu-efi-aarch64 and qemu-system-arm the arm64 tests.
TEST_PACKAGES := ansible-core openssh-client umoci skopeo apt-utils apt-cacher-ng gnupg chromium docker-registry apache2-utils binfmt-support arch-test qemu-efi-aarch64 qemu-system-arm
# The peers bench/disk.sh compares with (systemd-repart is in systemd).
BENCH_PACKAGES := mkosi debootstrap
ANSIBLE_PLUGIN := $(BIN)/packer-plugin-ansible
# One package cache for every test run on this machine, outside any image and any clone.
export STRATA_TEST_CACHE ?= /var/cache/strata-test/apt

.PHONY: all deps test-deps apt-install build plugin cli packer generate check-generate plugin-check install demo test test-slow unit bench fmt vet clean

all: build

## deps: Debian packages the builder runs (apt-get update once, then install what is missing).
deps:
	@$(MAKE) -s apt-install PACKAGES="$(HOST_PACKAGES)"

## test-deps: what the tests drive besides the builder.
test-deps: deps
	@$(MAKE) -s apt-install PACKAGES="$(TEST_PACKAGES)"

apt-install:
	@missing=""; for p in $(PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

## build: the plugin, the strata CLI and Packer itself (bin/packer, pinned in tools/packer).
build: plugin cli packer

plugin:
	$(GO) build -o $(PLUGIN) .

cli:
	$(GO) build -o $(STRATA) ./cmd/strata

packer: $(PACKER)
$(PACKER): tools/packer/go.mod tools/packer/go.sum
	cd tools/packer && $(GO) build -o $(PACKER) github.com/hashicorp/packer

# packer-plugin-ansible, pinned in tools/ansible. The Go checksum database
# has no entry for it; tools/ansible/go.sum pins its hash instead.
$(ANSIBLE_PLUGIN): tools/ansible/go.mod tools/ansible/go.sum
	cd tools/ansible && GONOSUMDB=github.com/hashicorp/packer-plugin-ansible $(GO) build -o $(ANSIBLE_PLUGIN) github.com/hashicorp/packer-plugin-ansible

$(SDC): go.mod go.sum
	$(GO) build -o $(SDC) github.com/hashicorp/packer-plugin-sdk/cmd/packer-sdc

## generate: HCL2 specs, docs partials and .web-docs, all with packer-sdc.
# packer-sdc struct-markdown finds the project root by a directory named
# packer-plugin-*; a link with that name makes any checkout work.
generate: $(SDC)
	@link=$$(mktemp -d)/packer-plugin-strata; ln -s $(CURDIR) $$link; \
	cd $$link && PATH=$(BIN):$$PATH $(GO) generate ./... ; rc=$$?; rm -f $$link; rmdir $$(dirname $$link); exit $$rc
	@# renderdocs skips files whose copy looks current and renders them again; start clean.
	rm -rf .web-docs
	PATH=$(BIN):$$PATH packer-sdc renderdocs -src docs -partials docs-partials -dst .web-docs

## check-generate: fails when the committed generated files are stale.
check-generate: generate
	@changed=$$(git status --porcelain -- '*.hcl2spec.go' docs-partials .web-docs); \
	if [ -n "$$changed" ]; then echo "generated files are stale; run 'make generate' and commit:"; echo "$$changed"; exit 1; fi

## install: installs the plugin into Packer's plugin directory, also while a
## build runs it (files are renamed into place, never written over).
install: build
	tools/install-plugin.sh $(PACKER) $(PLUGIN) $(PLUGIN_SOURCE)

## demo: builds the example base image and the app on it; the post-processor registers both in the embedded
## catalog (channel dev), and the CLI shows them and their lineage. examples/README.md goes on from here.
demo: deps install
	cd examples && $(PACKER) build -force base.pkr.hcl
	cd examples && $(PACKER) build -force app.pkr.hcl
	$(STRATA) versions base-os
	$(STRATA) versions app
	$(STRATA) channels app
	$(STRATA) lineage app@$$($(STRATA) --json channels app | python3 -c 'import json,sys; print([c["version"] for c in json.load(sys.stdin) if c["channel"] == "dev"][0])')

## plugin-check: packer-sdc's check that the binary works with Packer, and all five components registered.
plugin-check: build $(SDC)
	cd $(BIN) && ./packer-sdc plugin-check packer-plugin-strata
	@$(PLUGIN) describe | grep -q '"builders":\["chroot"\],"post_processors":\["catalog","test"\],"provisioners":\["packages"\],"datasources":\["image"\]' \
	  || { echo "plugin-check: describe does not list chroot, packages, catalog, test and image:"; $(PLUGIN) describe; exit 1; }

## test: everything: generated files, vet, plugin-check, unit tests and end-to-end builds through bin/packer.
# go test's own lines, then the slowest tests (tools/testtimes), so every run says where its time goes.
test: test-deps build $(ANSIBLE_PLUGIN) check-generate vet plugin-check
	$(GO) build -o $(BIN)/testtimes ./tools/testtimes
	set -o pipefail; STRATA_ACC=1 STRATA_PACKER=$(PACKER) STRATA_PLUGIN=$(PLUGIN) STRATA_CLI=$(STRATA) STRATA_ANSIBLE_PLUGIN=$(ANSIBLE_PLUGIN) \
	  $(GO) test -count=1 -timeout 40m -json ./... | $(BIN)/testtimes

## test-slow: the end-to-end checks too slow for `make test` (more disks booted under TCG: a squashfs root
## with GRUB on a child image, a root that is not there, a kernel that panics in its init; an arm64 disk built
## through qemu-user and booted under qemu-system-aarch64, TestAccDiskArm64), ~7 min on 2 cores plus the arm64 disk's.
# -p 1: builder/chroot's boot checks first, then emulated's disks (TestAccDisk beside TestAccDiskArm64), as when
# they were one package: not three TCG boots at once.
test-slow: test-deps build
	STRATA_ACC=1 STRATA_SLOW=1 STRATA_PACKER=$(PACKER) STRATA_PLUGIN=$(PLUGIN) STRATA_CLI=$(STRATA) \
	  $(GO) test -count=1 -timeout 90m -p 1 -run 'TestAccDisk|TestAccBootCheck' ./builder/chroot/ ./builder/chroot/emulated/
	STRATA_ACC=1 STRATA_SLOW=1 STRATA_PACKER=$(PACKER) STRATA_PLUGIN=$(PLUGIN) STRATA_CLI=$(STRATA) \
	  $(GO) test -count=1 -timeout 30m -run 'TestAccVM' ./post-processor/test/

unit:
	$(GO) test -count=1 ./...

vet:
	$(GO) vet ./...
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$unformatted" ]; then echo "gofmt: $$unformatted"; exit 1; fi

## bench: the comparison tables (needs the network to the Debian mirror).
bench: deps build
	@$(MAKE) -s apt-install PACKAGES="$(BENCH_PACKAGES)"
	bash bench/run.sh

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf $(BIN)
