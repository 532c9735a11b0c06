# Benchmark template: bench/noop.pkr.hcl's shape on Packer's own null
# builder (no communicator, no provisioner): Packer's cost alone.
source "null" "bench" {
  communicator = "none"
}

build {
  sources = ["source.null.bench"]
}
