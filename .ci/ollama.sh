#!/usr/bin/env bash
# Builds a CPU-only Ollama from the Go module proxy (no GPU, no download of
# prebuilt binaries) and caches it. Prints the binary's path on stdout.
# The cold build takes about 7 minutes on 2 cores; later runs reuse the cache.
set -euo pipefail
version=${OLLAMA_VERSION:-0.17.4}
cache=${MINDROUTER_CACHE:-$HOME/.cache/mindrouter}
bin=$cache/ollama-$version/ollama
if [ -x "$bin" ] && "$bin" --version 2>/dev/null | grep -q "$version"; then
  echo "$bin"; exit 0
fi
need=()
[ -f /usr/include/nlohmann/json.hpp ] || need+=(nlohmann-json3-dev)
[ -f /usr/include/stb/stb_image.h ] || [ -f /usr/include/stb_image.h ] || need+=(libstb-dev)
if [ ${#need[@]} -gt 0 ]; then
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"; } >&2
fi
inc=$cache/ollama-include
mkdir -p "$inc/miniaudio" "$cache/ollama-$version"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# Run the go commands outside any workspace so the project's go.work is not involved.
cd "$tmp"
export GOWORK=off GOFLAGS=
if [ ! -f "$inc/miniaudio/miniaudio.h" ]; then
  go mod download -json github.com/gen2brain/malgo@v0.11.24 >/dev/null
  cp "$(go env GOMODCACHE)/github.com/gen2brain/malgo@v0.11.24/miniaudio.h" "$inc/miniaudio/miniaudio.h"
  chmod u+w "$inc/miniaudio/miniaudio.h"
fi
echo "building ollama $version (cold build takes ~7 min)" >&2
CGO_CPPFLAGS="-I$inc -I/usr/include/stb" CGO_CFLAGS="-Wno-deprecated-declarations" GOBIN=$tmp \
  go install -ldflags="-X=github.com/ollama/ollama/version.Version=$version" "github.com/ollama/ollama@v$version" >&2
mv "$tmp/ollama" "$bin"
echo "$bin"
