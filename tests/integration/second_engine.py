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
from pathlib import Path

HOST_BRIDGE = Path("/sys/class/net/docker0")


class SecondEngine:
    """Where the second engine answers, and how to reach (freeze, kill, restart) its process."""

    def __init__(self, root: Path, namespace: str) -> None:
        self.root = root
        self.namespace = namespace
        self.host = f"unix://{root}/docker.sock"  # a DOCKER_HOST value
        self.log = root / "dockerd.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None, "the second engine is not running"
        return self.process.pid

    def env(self) -> dict[str, str]:
        """The environment of a docker client talking to this engine."""
        return {**os.environ, "DOCKER_HOST": self.host}

    def start(self) -> None:
        """Start dockerd on this engine's data (again, after a kill) and wait until it answers.

        Right after a kill, dockerd can fail to start its containerd while what the killed one
        left is still going away (`timeout waiting for containerd to start`, seen on a loaded
        machine): that is tried again, twice, after ending what is left."""
        for attempt in range(3):
            try:
                self._start_once()
                return
            except RuntimeError:
                if attempt == 2:
                    raise
                self._end_leftovers()
                time.sleep(2)

    def _end_leftovers(self) -> None:
        """SIGKILL this engine's dockerd group and any containerd still using its exec root."""
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=30)
        exec_root = str(self.root / "exec")
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                command = (proc / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if (
                command
                and command[0].endswith(b"containerd")
                and any(exec_root.encode() in part for part in command)
            ):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(proc.name), signal.SIGKILL)
        (self.root / "dockerd.pid").unlink(missing_ok=True)

    def _start_once(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                # nsenter, not `ip netns exec`: that one remounts /sys, hiding the cgroups.
                ["nsenter", f"--net=/run/netns/{self.namespace}", "dockerd",
                 "--data-root", str(self.root / "data"), "--exec-root", str(self.root / "exec"),
                 "--pidfile", str(self.root / "dockerd.pid"), "-H", self.host,
                 "--bridge", "none", "--iptables=false", "--ip-masq=false",
                 "--default-address-pool", "base=10.213.0.0/16,size=24"],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + 60
        while not _answers(self.host):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"the second dockerd did not start: {self.log.read_text()[-2000:]}"
                )
            time.sleep(0.2)

    def freeze(self) -> None:
        """SIGSTOP dockerd: its socket still accepts, nothing answers."""
        os.kill(self.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        os.kill(self.pid, signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL dockerd (its containerd and containers are ended with its process group)."""
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)
        (self.root / "dockerd.pid").unlink(missing_ok=True)

    def load_image(self, tag: str) -> None:
        """Copy an image of the machine's engine into this one (it has no registry either)."""
        saved = subprocess.Popen(["docker", "save", tag], stdout=subprocess.PIPE)
        subprocess.run(
            ["docker", "-H", self.host, "load", "--quiet"],
            stdin=saved.stdout, check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        assert saved.stdout is not None
        saved.stdout.close()
        assert saved.wait(timeout=60) == 0

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGCONT)  # a test may have frozen it
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)


def _answers(host: str) -> bool:
    try:
        probe = subprocess.run(
            ["docker", "-H", host, "version", "--format", "{{.Server.Version}}"],
            capture_output=True,
            check=False,
            timeout=10,
        )
    except subprocess.TimeoutExpired:
        return False
    return probe.returncode == 0


def _mounts_under(root: Path) -> list[str]:
    """Mount points at or below *root*, in the order they were mounted."""
    points = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    return [p for p in points if p == str(root) or p.startswith(f"{root}/")]


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
    engine = SecondEngine(root, namespace)
    try:
        engine.start()
        yield engine
    finally:
        engine.stop()
        subprocess.run(["ip", "netns", "delete", namespace], check=False)
        # A dockerd that was killed leaves its bind mount of the data root (and maybe more).
        for mount in reversed(_mounts_under(root)):
            subprocess.run(["umount", "--lazy", mount], check=False)
        subprocess.run(["rm", "-rf", "--one-file-system", str(root)], check=False)
        if had_bridge and not HOST_BRIDGE.exists():
            raise RuntimeError("the second engine removed the host's docker0 bridge")
