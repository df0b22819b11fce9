#!/usr/bin/env bash
# Builds (once per machine, cached by version under ~/.cache/sparkhist) the object-store
# servers the tests in tests/objectstore/ start: SeaweedFS (S3), fake-gcs-server (GCS),
# Azurite (Azure Blob). Everything comes from the Go module proxy and npm; the same
# commands build them on an empty machine. Usage: build_servers.sh [s3|gcs|azure]...
set -euo pipefail
CACHE=${SPARKHIST_CACHE:-$HOME/.cache/sparkhist}
SEAWEEDFS_VERSION=v0.0.0-20261109003541-7506e5f91cd6
FAKE_GCS_VERSION=v1.56.1
AZURITE_VERSION=3.37.0

build_s3() {
    local out="$CACHE/seaweedfs-$SEAWEEDFS_VERSION"
    [ -x "$out/weed" ] && return 0
    command -v go >/dev/null || { echo "go is needed to build SeaweedFS" >&2; return 1; }
    # `go install ...@VERSION` is refused (replace directives in its go.mod): build the
    # downloaded module as the main module.
    local dir
    dir=$(go mod download -json "github.com/seaweedfs/seaweedfs@$SEAWEEDFS_VERSION" |
        python3 -c 'import json,sys;print(json.load(sys.stdin)["Dir"])')
    local work="$CACHE/seaweedfs-$SEAWEEDFS_VERSION.build"
    rm -rf "$work" && mkdir -p "$work" "$out"
    cp -r "$dir" "$work/src" && chmod -R u+w "$work/src"
    (cd "$work/src" && go build -o "$out/weed.tmp" ./weed)
    mv "$out/weed.tmp" "$out/weed"
    rm -rf "$work"
}

build_gcs() {
    local out="$CACHE/fake-gcs-server-$FAKE_GCS_VERSION"
    [ -x "$out/fake-gcs-server" ] && return 0
    command -v go >/dev/null || { echo "go is needed to build fake-gcs-server" >&2; return 1; }
    mkdir -p "$out"
    GOBIN="$out" go install "github.com/fsouza/fake-gcs-server@$FAKE_GCS_VERSION"
}

build_azure() {
    local out="$CACHE/azurite-$AZURITE_VERSION"
    [ -x "$out/node_modules/.bin/azurite-blob" ] && return 0
    command -v npm >/dev/null || { echo "npm is needed to install Azurite" >&2; return 1; }
    mkdir -p "$out"
    (cd "$out" && npm install --no-audit --no-fund --silent "azurite@$AZURITE_VERSION")
}

targets=("$@")
((${#targets[@]})) || targets=(s3 gcs azure)
for t in "${targets[@]}"; do "build_$t"; done
