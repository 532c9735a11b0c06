#!/usr/bin/env bash
# Installs the plugin into Packer's plugin directory without writing over a
# plugin binary that a running build executes (that fails with "text file
# busy"): Packer lays the files out in a staging directory, and each is
# copied beside its final name and renamed over it. A running build keeps
# the old binary; the next build starts the new one.
#   tools/install-plugin.sh PACKER PLUGIN_BINARY SOURCE
set -euo pipefail
packer=$1 plugin=$2 source=$3
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
PACKER_PLUGIN_PATH=$stage "$packer" plugins install --path "$plugin" "$source" >/dev/null
# Where Packer keeps this plugin now, if it is installed: else let Packer
# install it there itself (nothing can be running it yet).
installed=$("$packer" plugins installed 2>/dev/null | grep -F "/$source/" | head -n1 || true)
if [ -z "$installed" ]; then
  "$packer" plugins install --path "$plugin" "$source"
  exit 0
fi
dest=${installed%%/"$source"/*}
(cd "$stage" && find . -type f) | while read -r f; do
  mkdir -p "$dest/$(dirname "$f")"
  cp "$stage/$f" "$dest/$f.new.$$"
  mv -f "$dest/$f.new.$$" "$dest/$f"
done
echo "Installed $source from $plugin into $dest"
