#!/usr/bin/env bats
# Run inside the image by strata-test (with bats when the image has it).

@test "the image has an os-release" {
  [ -r /etc/os-release ]
}

@test "the root file system is not the host's" {
  [ "$(cat /etc/strata-test-marker)" = "inside" ]
}
