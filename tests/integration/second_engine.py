"""A second Docker engine of the tests' own, which a test may break, kill or freeze.

It runs in a network namespace of its own: a dockerd started with ``--bridge none`` deletes
any interface named ``docker0`` it can see, and the host's ``docker0`` is what every container
and every build with ``RUN`` on the machine needs. Its data, exec root, pidfile, socket and
address pool are its own too, so nothing it does reaches the engine the other tests use.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

HOST_BRIDGE = Path("/sys/class/net/docker0")


@dataclass(frozen=True)
class SecondEngine:
    """Where the second engine answers, and how to reach its process."""

    host: str  # a DOCKER_HOST value: unix:///.../docker.sock
    pid: int
    log: Path

    def env(self) -> dict[str, str]:
        """The environment of a docker client talking to this engine."""
        return {**os.environ, "DOCKER_HOST": self.host}


def _answers(host: str) -> bool:
    probe = subprocess.run(
        ["docker", "-H", host, "version", "--format", "{{.Server.Version}}"],
        capture_output=True,
        check=False,
        timeout=10,
    )
    return probe.returncode == 0


@contextlib.contextmanager
def second_engine() -> Iterator[SecondEngine]:
    """Start a second dockerd in its own network namespace; always stopped and removed after."""
    if not all(shutil.which(tool) for tool in ("dockerd", "ip", "nsenter")):
        raise RuntimeError(
            "a second engine needs dockerd, ip and nsenter: run scripts/bootstrap.sh"
        )
    had_bridge = HOST_BRIDGE.exists()
    token = secrets.token_hex(3)
    # Unix socket paths are short (108 bytes), containerd's lies under the exec root.
    root = Path(f"/tmp/sm-e2-{token}")
    root.mkdir(mode=0o700)
    namespace = f"stackmatrix-e2-{token}"
    subprocess.run(["ip", "netns", "add", namespace], check=True)
    host = f"unix://{root}/docker.sock"
    log = root / "dockerd.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            # nsenter, not `ip netns exec`: that one remounts /sys, hiding the cgroups.
            ["nsenter", f"--net=/run/netns/{namespace}", "dockerd",
             "--data-root", str(root / "data"), "--exec-root", str(root / "exec"),
             "--pidfile", str(root / "dockerd.pid"), "-H", host,
             "--bridge", "none", "--iptables=false", "--ip-masq=false",
             "--default-address-pool", "base=10.213.0.0/16,size=24"],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not _answers(host):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the second dockerd did not start: {log.read_text()[-2000:]}")
            time.sleep(0.2)
        yield SecondEngine(host=host, pid=process.pid, log=log)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGCONT)  # a test may have frozen it
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
        subprocess.run(["ip", "netns", "delete", namespace], check=False)
        subprocess.run(["rm", "-rf", "--one-file-system", str(root)], check=False)
        if had_bridge and not HOST_BRIDGE.exists():
            raise RuntimeError("the second engine removed the host's docker0 bridge")
