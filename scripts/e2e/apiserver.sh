#!/usr/bin/env bash
# Build the upstream Kubernetes apiextensions-apiserver (CRDs and custom resources with the real
# API machinery) into .e2e/bin/, for tests/e2e/apiserver.py to run against Debian's etcd.
# No registry here ships kube-apiserver or envtest; Debian sid packages this server's Go sources
# (golang-k8s-apiextensions-apiserver-dev, main.go included) with every Go library it needs,
# so Debian's Go compiles it offline in a sid root filesystem made by mmdebstrap.
# Skipped when the binary exists; FORCE=1 rebuilds it.
#
# Needs: scripts/e2e/install.sh run first (mmdebstrap, podman), root, ~5 GB of free memory: the
# build root (~2.7 GB of Go sources and toolchain, plus Go's build cache) lives in a tmpfs,
# because deleting it from this disk took longer (~3.5 min) than compiling half of it.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

binary="${E2E_DIR}/bin/apiextensions-apiserver"
rootfs="${E2E_DIR}/cache/sid-go-rootfs"
source_dir=/usr/share/gocode/src/k8s.io/apiextensions-apiserver

make_rootfs() {
  mkdir -p "${rootfs}"
  mount -t tmpfs -o size=8g,mode=0755 flywheel-e2e-go "${rootfs}"
  # The mirror's sid Release file is past its Valid-Until date: apt must accept it anyway.
  mmdebstrap --quiet --variant=minbase \
    --include=golang-go,golang-k8s-apiextensions-apiserver-dev \
    --aptopt='Acquire::Check-Valid-Until "false"' \
    sid "${rootfs}" "$(debian_mirror)"
}

remove_rootfs() {
  if mountpoint -q "${rootfs}"; then umount "${rootfs}"; fi
  rmdir "${rootfs}" 2> /dev/null || true
}

compile() {
  mkdir -p "$(dirname "${binary}")"
  # podman gives the build root its /proc and /dev (Go needs /proc/self/exe). GOPATH mode over
  # Debian's /usr/share/gocode, no module proxy: nothing is fetched while compiling.
  podman run --rm \
    --volume "$(dirname "${binary}"):/out" \
    --env GO111MODULE=off --env GOPATH=/usr/share/gocode --env GOPROXY=off \
    --env GOCACHE=/tmp/gocache --env CGO_ENABLED=0 \
    --workdir "${source_dir}" \
    --rootfs "${rootfs}" \
    /usr/bin/go build -trimpath -ldflags='-s -w' -o "/out/$(basename "${binary}").new" .
  mv "${binary}.new" "${binary}"
  chroot "${rootfs}" dpkg-query -W -f='${Package} ${Version}\n' \
    golang-k8s-apiextensions-apiserver-dev golang-go > "${binary}.versions"
}

if [[ "${FORCE:-0}" != "1" && -x "${binary}" ]]; then
  timeline "apiextensions-apiserver already built: ${binary}"
else
  remove_rootfs  # what an interrupted run left
  trap remove_rootfs EXIT
  phase "sid build root (mmdebstrap, in a tmpfs)" make_rootfs
  phase "compile apiextensions-apiserver" compile
fi
timeline "built from: $(tr '\n' ' ' < "${binary}.versions")"
