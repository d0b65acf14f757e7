"""A real Kubernetes API server for custom resources on loopback: Debian's etcd and the upstream
apiextensions-apiserver that scripts/e2e/apiserver.sh builds.

It serves CRDs and custom resources with the real API machinery (schema validation, pruning,
strict field validation, JSON and merge patch, content types); it serves no core kinds. TLS both
ways with a throwaway CA: the client certificate is in `system:masters`, the group the server
authorizes without asking a core API server (there is none).

    with running_apiserver(tmp_path) as server:
        api = kubernetes.client.ApiClient(server.configuration())
"""

from __future__ import annotations

import datetime
import ipaddress
import shutil
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

REPO = Path(__file__).resolve().parents[2]
APISERVER = REPO / ".e2e" / "bin" / "apiextensions-apiserver"
# The admission plugins enabled by default all watch the core API (namespaces, webhook and
# policy objects), which this server does not serve.
ADMISSION_OFF = (
    "NamespaceLifecycle,MutatingAdmissionPolicy,MutatingAdmissionWebhook,"
    "ValidatingAdmissionPolicy,ValidatingAdmissionWebhook"
)


class StartError(RuntimeError):
    """etcd or the API server did not come up; the message carries the end of its log."""


@dataclass(frozen=True)
class ApiServer:
    """Where the running server is and the files a client needs to reach it."""

    url: str
    ca_file: Path
    cert_file: Path
    key_file: Path

    def configuration(self) -> Any:
        """A kubernetes.client.Configuration for this server (the client the monitor uses)."""
        from kubernetes import client

        configuration = client.Configuration()
        configuration.host = self.url
        configuration.ssl_ca_cert = str(self.ca_file)
        configuration.cert_file = str(self.cert_file)
        configuration.key_file = str(self.key_file)
        return configuration

    def write_kubeconfig(self, path: Path) -> Path:
        """A kubeconfig file for tools (`kubectl --validate=false`: no /api discovery here)."""
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "e2e",
                    "cluster": {"server": self.url, "certificate-authority": str(self.ca_file)},
                }
            ],
            "users": [
                {
                    "name": "e2e",
                    "user": {
                        "client-certificate": str(self.cert_file),
                        "client-key": str(self.key_file),
                    },
                }
            ],
            "contexts": [{"name": "e2e", "context": {"cluster": "e2e", "user": "e2e"}}],
            "current-context": "e2e",
        }
        path.write_text(yaml.safe_dump(config), encoding="utf-8")
        return path


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _certificate(
    subject: str, key: Any, ca: tuple[x509.Certificate, Any] | None, **extensions: Any
) -> x509.Certificate:
    """A one-day certificate: self-signed CA when `ca` is None, else issued by `ca`."""
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, subject)]
        + [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in extensions.get("groups", [])]
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(ca[0].subject if ca else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca is None, path_length=None), critical=True)
    )
    if "ip" in extensions:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(extensions["ip"]))]),
            critical=False,
        )
    if "usage" in extensions:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([extensions["usage"]]), critical=False
        )
    return builder.sign(ca[1] if ca else key, hashes.SHA256())


def _write_pki(folder: Path) -> dict[str, Path]:
    """A CA, a serving certificate for 127.0.0.1 and a `system:masters` client certificate."""
    folder.mkdir(parents=True, exist_ok=True)
    keys = {label: ec.generate_private_key(ec.SECP256R1()) for label in ("ca", "server", "client")}
    ca = _certificate("flywheel-e2e-ca", keys["ca"], None)
    certificates = {
        "ca": ca,
        "server": _certificate(
            "127.0.0.1",
            keys["server"],
            (ca, keys["ca"]),
            ip="127.0.0.1",
            usage=ExtendedKeyUsageOID.SERVER_AUTH,
        ),
        "client": _certificate(
            "flywheel-e2e",
            keys["client"],
            (ca, keys["ca"]),
            groups=["system:masters"],
            usage=ExtendedKeyUsageOID.CLIENT_AUTH,
        ),
    }
    files: dict[str, Path] = {}
    for label, certificate in certificates.items():
        files[f"{label}.crt"] = folder / f"{label}.crt"
        files[f"{label}.crt"].write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        files[f"{label}.key"] = folder / f"{label}.key"
        files[f"{label}.key"].touch(mode=0o600)
        files[f"{label}.key"].write_bytes(
            keys[label].private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    return files


@contextmanager
def _process(args: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Run a server in its own process group; stop it by its PID on exit, however we leave."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            args,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)


def _wait_until(
    ready: Any, process: subprocess.Popen[bytes], log: Path, what: str, timeout: float
) -> float:
    """Poll `ready()` until it is true; the seconds it took. Fails early if the process died."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:]
            raise StartError(f"{what} exited with {process.returncode}:\n{tail}")
        try:
            if ready():
                return time.monotonic() - start
        except (httpx.HTTPError, OSError):
            pass
        time.sleep(0.1)
    tail = log.read_text(errors="replace")[-3000:]
    raise StartError(f"{what} was not ready after {timeout:.0f} s:\n{tail}")


@contextmanager
def running_apiserver(workdir: Path, binary: Path = APISERVER) -> Iterator[ApiServer]:
    """etcd and the API server on free loopback ports, data under `workdir`; both stopped
    (by PID) on exit. Prints each one's start time for the e2e timeline."""
    etcd = shutil.which("etcd")
    if etcd is None or not binary.is_file():
        raise StartError(
            f"needs Debian's etcd ({etcd or 'not found'}) and {binary} "
            f"({'present' if binary.is_file() else 'missing'}): run "
            "`bash scripts/e2e/install.sh && bash scripts/e2e/apiserver.sh`"
        )
    pki = _write_pki(workdir / "pki")
    client_port, peer_port, secure_port = free_port(), free_port(), free_port()
    etcd_url = f"http://127.0.0.1:{client_port}"
    peer_url = f"http://127.0.0.1:{peer_port}"
    with ExitStack() as stack:
        etcd_log = workdir / "etcd.log"
        etcd_process = stack.enter_context(
            _process(
                [
                    etcd,
                    "--name=e2e",
                    f"--data-dir={workdir / 'etcd'}",
                    f"--listen-client-urls={etcd_url}",
                    f"--advertise-client-urls={etcd_url}",
                    f"--listen-peer-urls={peer_url}",
                    f"--initial-advertise-peer-urls={peer_url}",
                    f"--initial-cluster=e2e={peer_url}",
                    "--log-level=warn",
                ],
                etcd_log,
            )
        )
        took = _wait_until(
            lambda: httpx.get(f"{etcd_url}/health", timeout=1).json().get("health") == "true",
            etcd_process,
            etcd_log,
            "etcd",
            30,
        )
        print(f"etcd ready on {etcd_url} in {took:.2f} s")

        url = f"https://127.0.0.1:{secure_port}"
        server = ApiServer(url, pki["ca.crt"], pki["client.crt"], pki["client.key"])
        kubeconfig = server.write_kubeconfig(workdir / "kubeconfig")
        server_log = workdir / "apiserver.log"
        server_process = stack.enter_context(
            _process(
                [
                    str(binary),
                    f"--etcd-servers={etcd_url}",
                    "--bind-address=127.0.0.1",
                    f"--secure-port={secure_port}",
                    f"--tls-cert-file={pki['server.crt']}",
                    f"--tls-private-key-file={pki['server.key']}",
                    f"--client-ca-file={pki['ca.crt']}",
                    # There is no core API server. The kubeconfigs for it name this server
                    # itself: the client certificate authenticates locally and `system:masters`
                    # is authorized without a delegated call; the core informers never sync,
                    # which only keeps /readyz red.
                    f"--kubeconfig={kubeconfig}",
                    f"--authentication-kubeconfig={kubeconfig}",
                    f"--authorization-kubeconfig={kubeconfig}",
                    "--authentication-skip-lookup",
                    f"--disable-admission-plugins={ADMISSION_OFF}",
                    # Its flow-control objects live in the core API: plain in-flight limits.
                    "--enable-priority-and-fairness=false",
                ],
                server_log,
            )
        )
        tls = ssl.create_default_context(cafile=pki["ca.crt"])
        tls.load_cert_chain(pki["client.crt"], pki["client.key"])
        with httpx.Client(verify=tls) as http:
            # /readyz stays red (its core-API client points nowhere); /livez is the signal.
            took = _wait_until(
                lambda: http.get(f"{url}/livez", timeout=2).status_code == 200,
                server_process,
                server_log,
                "apiextensions-apiserver",
                60,
            )
        print(f"apiextensions-apiserver live on {url} in {took:.2f} s")
        yield server
