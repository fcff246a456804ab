#!/usr/bin/env bash
# Refresh the Leaflet files the well map serves itself (control_center/static/leaflet/) from
# Leaflet's npm package, so the map never needs a CDN. Needs npm; run from the repository root.
set -euo pipefail
VERSION="${1:-1.9.4}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "leaflet@${VERSION}" >/dev/null && tar xzf "leaflet-${VERSION}.tgz")
target=control_center/static/leaflet
mkdir -p "$target/images"
cp "$work/package/dist/leaflet.js" "$work/package/dist/leaflet.css" "$work/package/LICENSE" "$target/"
cp "$work/package/dist/images/"*.png "$target/images/"
echo "Leaflet ${VERSION} copied into $target"
