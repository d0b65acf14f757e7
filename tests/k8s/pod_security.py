"""A checker for the Pod Security Standards "restricted" profile plus Flywheel's own rules.

No maintained offline tool evaluates PSS on manifests (the real check is the API server's
PodSecurity admission, which the e2e workflow enforces on its namespace), so this module
encodes https://kubernetes.io/docs/concepts/security/pod-security-standards/ for the fields
Flywheel renders, including the inline pod spec of an InferenceService predictor.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

# Volume types the restricted profile allows.
ALLOWED_VOLUMES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}
SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}


def pod_specs(obj: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield (where, pod spec) for every pod an object creates, including KServe components."""
    kind, spec = obj["kind"], obj.get("spec", {})
    name = f"{kind}/{obj['metadata']['name']}"
    if kind == "Pod":
        yield name, spec
    elif kind in {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}:
        yield name, spec["template"]["spec"]
    elif kind == "CronJob":
        yield name, spec["jobTemplate"]["spec"]["template"]["spec"]
    elif kind == "InferenceService":
        for component in ("predictor", "transformer", "explainer"):
            if component in spec:
                yield f"{name}.{component}", spec[component]


def _containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        *pod.get("initContainers", []),
        *pod.get("containers", []),
        *pod.get("ephemeralContainers", []),
    ]


def restricted_violations(pod: dict[str, Any]) -> list[str]:
    """Violations of the PSS "restricted" profile (which includes "baseline")."""
    problems: list[str] = []
    pod_sc = pod.get("securityContext", {})
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(field):
            problems.append(f"{field} must be false")
    for volume in pod.get("volumes", []):
        kinds = set(volume) - {"name"}
        if not kinds <= ALLOWED_VOLUMES:
            problems.append(f"volume {volume['name']} uses {sorted(kinds - ALLOWED_VOLUMES)}")
    for sysctl in pod_sc.get("sysctls", []):
        if sysctl["name"] not in SAFE_SYSCTLS:
            problems.append(f"unsafe sysctl {sysctl['name']}")
    if pod_sc.get("runAsUser") == 0:
        problems.append("pod runAsUser must not be 0")
    for container in _containers(pod):
        where = f"container {container['name']}"
        sc = container.get("securityContext", {})
        if sc.get("privileged"):
            problems.append(f"{where}: privileged")
        if sc.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{where}: allowPrivilegeEscalation must be false")
        if not (
            sc.get("runAsNonRoot") is True
            or (pod_sc.get("runAsNonRoot") is True and sc.get("runAsNonRoot") is not False)
        ):
            problems.append(f"{where}: runAsNonRoot must be true (pod or container)")
        if sc.get("runAsUser") == 0:
            problems.append(f"{where}: runAsUser must not be 0")
        seccomp = sc.get("seccompProfile", pod_sc.get("seccompProfile", {}))
        if seccomp.get("type") not in {"RuntimeDefault", "Localhost"}:
            problems.append(f"{where}: seccompProfile must be RuntimeDefault or Localhost")
        capabilities = sc.get("capabilities", {})
        if "ALL" not in capabilities.get("drop", []):
            problems.append(f"{where}: capabilities must drop ALL")
        if set(capabilities.get("add", [])) - {"NET_BIND_SERVICE"}:
            problems.append(f"{where}: may only add NET_BIND_SERVICE")
        for port in container.get("ports", []):
            if port.get("hostPort"):
                problems.append(f"{where}: hostPort {port['hostPort']}")
    return problems


def hardening_violations(pod: dict[str, Any]) -> list[str]:
    """Flywheel's rules beyond PSS: requests and limits, read-only root filesystem."""
    problems: list[str] = []
    for container in _containers(pod):
        where = f"container {container['name']}"
        resources = container.get("resources", {})
        for section in ("requests", "limits"):
            missing = {"cpu", "memory"} - set(resources.get(section, {}))
            if missing:
                problems.append(f"{where}: {section} missing {sorted(missing)}")
        if container.get("securityContext", {}).get("readOnlyRootFilesystem") is not True:
            problems.append(f"{where}: readOnlyRootFilesystem must be true")
    return problems


def mounts_token(pod: dict[str, Any], service_accounts: dict[str, dict[str, Any]]) -> bool:
    """Whether the pod gets an API token: the pod's setting wins, then its ServiceAccount's."""
    if "automountServiceAccountToken" in pod:
        return bool(pod["automountServiceAccountToken"])
    account = service_accounts.get(pod.get("serviceAccountName", "default"), {})
    return account.get("automountServiceAccountToken", True) is not False
