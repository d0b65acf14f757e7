#!/usr/bin/env bash
# Install what `make e2e` needs from Debian's packages and write podman's configuration for
# this checkout. Idempotent: installed packages are left alone, the configuration is rewritten
# every run (cheap, and it follows the checkout if the folder moved).
#
#   bash scripts/e2e/install.sh
#
# Needs: Debian 12 (bookworm), root. Writes: .e2e/containers/ (configuration), and installs
#   podman + runc  the container engine; crun fails here ("cgroups in hybrid mode not supported")
#   mmdebstrap     root filesystems from the Debian mirror: the base image, the Go build root
#   etcd-server    the storage the apiextensions-apiserver (scripts/e2e/apiserver.sh) runs on
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

packages=(podman runc mmdebstrap etcd-server)

install_packages() {
  local missing=()
  for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "${package}" 2> /dev/null | grep -q "install ok installed" \
      || missing+=("${package}")
  done
  if ((${#missing[@]} == 0)); then
    timeline "packages already installed: ${packages[*]}"
    return
  fi
  timeline "installing ${missing[*]}"
  apt-get update -qq
  # No recommends: they pull in slirp4netns, fuse-overlayfs, dbus-user-session, none used here.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" \
    > /dev/null
}

write_configuration() {
  local conf="${E2E_DIR}/containers"
  mkdir -p "${conf}/networks" "${E2E_DIR}/storage"
  # The whole folder is machine-local state; keep it out of git whatever .gitignore says.
  printf '*\n' > "${E2E_DIR}/.gitignore"

  # Each setting is one CONTAINERS.md found necessary on this machine kind.
  cat > "${CONTAINERS_CONF}" << CONF
# Written by scripts/e2e/install.sh; rewritten on every run.
[containers]
# Host network and UTS namespaces only: no bridge or CNI network is ever created here.
netns = "host"
utsns = "host"
# Root here lacks CAP_SYS_RESOURCE and the hard open-files limit is 20000: podman's default
# nofile of 1048576 fails with "setrlimit RLIMIT_NOFILE: Operation not permitted".
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[engine]
runtime = "runc"
# No systemd to manage cgroups or the journal here.
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "${E2E_DIR}/storage/events.log"

[network]
network_backend = "cni"
# \`podman kube play\` writes a CNI definition even with host networking: into our folder,
# never into /etc/cni/net.d.
network_config_dir = "${conf}/networks"
CONF

  cat > "${CONTAINERS_STORAGE_CONF}" << CONF
# Written by scripts/e2e/install.sh: this checkout's images and containers, nobody else's.
[storage]
driver = "overlay"
graphroot = "${E2E_DIR}/storage/graph"
runroot = "${E2E_DIR}/storage/run"
CONF
  timeline "podman configuration in ${conf}"
}

phase "install packages" install_packages
write_configuration
timeline "$(podman --version), $(runc --version | head -n1), $(etcd --version | head -n1)"
podman info --format 'podman: runtime {{.Host.OCIRuntime.Name}}, cgroups {{.Host.CgroupManager}}, storage {{.Store.GraphDriverName}} in {{.Store.GraphRoot}}'
