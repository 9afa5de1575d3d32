"""A real container registry for the integration tests, and a front that can make it misbehave.

``local_registry(tmp_path)`` runs Debian's ``docker-registry`` (distribution 2.8) on a free
loopback port, from a config file of its own, with its storage under ``tmp_path``: no daemon
config is needed, because the engine treats every registry on 127.0.0.0/8 as insecure and talks
plain HTTP to it. The registry writes one Apache "combined" line per request to stdout (its
access log) and its JSON application log to stderr; both are captured in files, and the access
log is what ``manifest_requests`` counts.

Next to it runs a ``FaultFront``: a small threaded HTTP proxy on another loopback port. Whatever
it is not told to break it forwards byte for byte (status, headers, body, HEAD answers), so the
engine can push and pull through it; a manifest reference it is told to break gets a
registry-style error instead, for the first N requests or for all of them. Point the engine at
``registry.front.address`` to see what it does with a registry that fails.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import re
import secrets
import shutil
import socket
import subprocess
import tarfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REGISTRY_BINARY = "docker-registry"
INSTALL_HINT = (
    "the container registry the tests run is Debian's docker-registry package "
    "(distribution 2.8, `apt-get install docker-registry`): run scripts/bootstrap.sh"
)

# 127.0.0.1 - - [01/Dec/2026:10:18:59 +0000] "PUT /v2/x/manifests/v1 HTTP/1.1" 201 0 "" "docker/…"
_ACCESS_LINE = re.compile(
    r'^\S+ \S+ \S+ \[[^\]]*\] "(?P<method>[A-Z]+) (?P<target>\S+) HTTP/[0-9.]+" (?P<status>\d{3}) '
)
_MANIFEST_PATH = re.compile(r"^/v2/(?P<name>.+)/manifests/(?P<reference>[^/]+)$")
# Hop-by-hop headers (RFC 9110 7.6.1) belong to one connection and are never forwarded;
# Expect is answered by the front itself (BaseHTTPRequestHandler sends the 100 Continue).
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "expect",
    }
)
_COPY_BUFFER = 1 << 16


@dataclass(frozen=True)
class Request:
    """One HTTP request as a log saw it: method, path (query dropped) and response status."""

    method: str
    path: str
    status: int


@dataclass
class _Fault:
    status: int
    remaining: int | None  # None: every request


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _error_body(status: int, name: str, reference: str) -> bytes:
    code, message = {
        404: ("MANIFEST_UNKNOWN", "manifest unknown"),
        429: ("TOOMANYREQUESTS", "too many requests (injected by the test front)"),
    }.get(status, ("UNAVAILABLE", "service unavailable (injected by the test front)"))
    error = {"code": code, "message": message, "detail": {"Name": name, "Tag": reference}}
    return json.dumps({"errors": [error]}).encode()


class FaultFront:
    """An HTTP front for a registry: forwards every request unless told to fail a manifest."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self._faults: dict[tuple[str, str], _Fault] = {}
        self._lock = threading.Lock()
        self._injected: list[Request] = []
        self._forwarded: list[Request] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self.address = f"127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},  # shutdown() waits up to one interval
            name=f"registry-front-{self.address}",
            daemon=True,
        )

    def start(self) -> None:
        """Serve in a background thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the listening socket."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def fail_manifest(
        self, name: str, reference: str, *, status: int, times: int | None = None
    ) -> None:
        """Answer GET/HEAD of /v2/NAME/manifests/REFERENCE with STATUS, TIMES times (None: always).

        Requests after the first TIMES are forwarded to the registry again.
        """
        with self._lock:
            self._faults[(name, reference)] = _Fault(status, times)

    @property
    def injected(self) -> list[Request]:
        """The requests the front answered with an injected error, in order."""
        with self._lock:
            return list(self._injected)

    @property
    def forwarded(self) -> list[Request]:
        """The requests the front passed on to the registry, in order, with its status."""
        with self._lock:
            return list(self._forwarded)

    def _take_fault(self, method: str, path: str) -> _Fault | None:
        match = _MANIFEST_PATH.match(path)
        if method not in {"GET", "HEAD"} or match is None:
            return None
        with self._lock:
            fault = self._faults.get((match["name"], match["reference"]))
            if fault is None or fault.remaining == 0:
                return None
            if fault.remaining is not None:
                fault.remaining -= 1
            return fault

    def _record(self, request: Request, *, injected: bool) -> None:
        with self._lock:
            (self._injected if injected else self._forwarded).append(request)


def _handler_for(front: FaultFront) -> type[BaseHTTPRequestHandler]:
    class Handler(_FrontHandler):
        pass

    Handler.front = front
    return Handler


class _FrontHandler(BaseHTTPRequestHandler):
    front: FaultFront
    protocol_version = "HTTP/1.1"  # keep-alive and chunked bodies, as the engine speaks it
    timeout = 30  # an idle keep-alive connection ends its thread after this long

    def do_GET(self) -> None:
        self._handle()

    do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = do_GET

    def log_message(self, format: str, *args: object) -> None:
        """Silence the default stderr log: the front keeps its own records."""

    def _handle(self) -> None:
        path = self.path.split("?", 1)[0]
        fault = self.front._take_fault(self.command, path)
        if fault is None:
            status = self._forward()
            self.front._record(Request(self.command, path, status), injected=False)
            return
        self._drain_request_body()
        match = _MANIFEST_PATH.match(path)
        assert match is not None
        body = _error_body(fault.status, match["name"], match["reference"])
        self.send_response_only(fault.status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Docker-Distribution-Api-Version", "registry/2.0")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.front._record(Request(self.command, path, fault.status), injected=True)

    def _request_chunks(self) -> Iterator[bytes]:
        """The request body as it arrives, de-chunked if it was sent chunked."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in {b"\r\n", b"\n", b""}:
                        pass  # trailers: none that matter to a registry
                    return
                yield self.rfile.read(size)
                self.rfile.readline()
        remaining = int(self.headers.get("Content-Length", "0") or "0")
        while remaining > 0:
            chunk = self.rfile.read(min(remaining, _COPY_BUFFER))
            if not chunk:
                return
            remaining -= len(chunk)
            yield chunk

    def _drain_request_body(self) -> None:
        for _ in self._request_chunks():
            pass

    def _forward(self) -> int:
        host, port = self.front.upstream.rsplit(":", 1)
        upstream = http.client.HTTPConnection(host, int(port), timeout=60)
        try:
            # The Host header goes through unchanged: the registry builds the absolute URLs it
            # returns (upload Location) from it, so they already name the front.
            upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for key, value in self.headers.items():
                if key.lower() not in _HOP_BY_HOP:
                    upstream.putheader(key, value)
            chunked = "chunked" in self.headers.get("Transfer-Encoding", "").lower()
            if chunked:
                upstream.putheader("Transfer-Encoding", "chunked")
            upstream.endheaders()
            for chunk in self._request_chunks():
                upstream.send(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
            if chunked:
                upstream.send(b"0\r\n\r\n")
            response = upstream.getresponse()
            self._relay(response)
            return response.status
        finally:
            upstream.close()

    def _relay(self, response: http.client.HTTPResponse) -> None:
        self.send_response_only(response.status, response.reason)
        sized = response.getheader("Content-Length") is not None
        bodyless = self.command == "HEAD" or response.status in {204, 304}
        for key, value in response.getheaders():
            if key.lower() in _HOP_BY_HOP:
                continue
            if key.lower() == "location":
                # Absolute URLs that name the registry itself must lead back through the front.
                upstream, front = f"//{self.front.upstream}/", f"//{self.front.address}/"
                self.send_header(key, value.replace(upstream, front, 1))
            else:
                self.send_header(key, value)
        rechunk = not sized and not bodyless
        if rechunk:
            self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if bodyless:
            return
        while chunk := response.read(_COPY_BUFFER):
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk) if rechunk else chunk)
        if rechunk:
            self.wfile.write(b"0\r\n\r\n")


@dataclass(frozen=True)
class Registry:
    """A running registry: where it answers, its logs, its fault front, and docker helpers."""

    address: str  # 127.0.0.1:PORT, the registry itself
    front: FaultFront  # another 127.0.0.1 port, forwarding to the registry
    access_log_path: Path  # the registry's stdout: one combined-format line per request
    log_path: Path  # the registry's stderr: its JSON application log

    def push(self, local_image: str, name: str) -> str:
        """Tag LOCAL_IMAGE as ADDRESS/NAME, push it, and return that reference.

        NAME is ``repository:tag``. The new local tag stays (as after any push); ``forget``
        removes it.
        """
        reference = f"{self.address}/{name}"
        _docker("tag", local_image, reference)
        _docker("push", "--quiet", reference)
        return reference

    def forget(self, reference: str) -> None:
        """Remove the local tag REFERENCE, and the image with it if nothing else tags it.

        A later pull of REFERENCE then asks the registry again; it downloads the layers only
        if no other local image holds them (``tiny_image`` makes an image that nothing else does).
        """
        _docker("image", "rm", reference)

    def access_log(self) -> list[Request]:
        """Every request the registry has answered so far, in order."""
        requests = []
        for line in self.access_log_path.read_text(errors="replace").splitlines():
            match = _ACCESS_LINE.match(line)
            if match is not None:
                path = match["target"].split("?", 1)[0]
                requests.append(Request(match["method"], path, int(match["status"])))
        return requests

    def manifest_requests(self, name: str, tag: str) -> int:
        """How many GET and HEAD requests for /v2/NAME/manifests/TAG the registry answered."""
        path = f"/v2/{name}/manifests/{tag}"
        return sum(1 for r in self.access_log() if r.path == path and r.method in {"GET", "HEAD"})

    def local_references(self) -> list[str]:
        """The local image tags that name this registry or its front."""
        listing = _docker("image", "ls", "--format", "{{.Repository}}:{{.Tag}}")
        prefixes = (f"{self.address}/", f"{self.front.address}/")
        return [ref for ref in listing.split() if ref.startswith(prefixes)]


def _docker(*args: str) -> str:
    done = subprocess.run(
        ["docker", *args], capture_output=True, text=True, check=False, timeout=120
    )
    if done.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


def _config(storage: Path, address: str) -> str:
    # JSON is YAML: no quoting surprises in paths.
    config = {
        "version": 0.1,
        "log": {"level": "info", "formatter": "json", "accesslog": {"disabled": False}},
        "storage": {
            "filesystem": {"rootdirectory": str(storage)},
            "delete": {"enabled": True},
            "maintenance": {"uploadpurging": {"enabled": False}},
        },
        "http": {"addr": address, "secret": secrets.token_hex(16)},
    }
    return json.dumps(config, indent=2)


def _answers(address: str) -> bool:
    host, port = address.rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=2)
    try:
        connection.request("GET", "/v2/")
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


def _start(binary: str, root: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Start the registry on a free port; a port taken meanwhile means another try."""
    for attempt in range(3):
        address = f"127.0.0.1:{free_port()}"
        config = root / "config.yml"
        config.write_text(_config(root / "storage", address))
        with (root / "access.log").open("ab") as out, (root / "registry.log").open("ab") as err:
            process = subprocess.Popen(
                [binary, "serve", str(config)],
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + 15
        while process.poll() is None and time.monotonic() < deadline:
            if _answers(address):
                return process, address
            time.sleep(0.05)
        _stop(process)
        log = (root / "registry.log").read_text(errors="replace")
        if "address already in use" not in log or attempt == 2:
            raise RuntimeError(f"docker-registry did not start on {address}: {log[-2000:]}")
    raise AssertionError("unreachable")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@contextlib.contextmanager
def local_registry(tmp_path: Path) -> Iterator[Registry]:
    """Run a registry and its fault front until the block ends, then stop both.

    On exit every local tag naming the registry or the front is removed too.
    """
    binary = shutil.which(REGISTRY_BINARY)
    if binary is None:
        raise FileNotFoundError(f"{REGISTRY_BINARY} is not on PATH: {INSTALL_HINT}")
    root = tmp_path / "registry"
    root.mkdir()
    process, address = _start(binary, root)
    front = FaultFront(address)
    front.start()
    registry = Registry(address, front, root / "access.log", root / "registry.log")
    try:
        yield registry
    finally:
        try:
            for reference in registry.local_references():
                registry.forget(reference)
        finally:
            front.stop()
            _stop(process)


@contextlib.contextmanager
def tiny_image(repository: str = "stackmatrix-registry-test") -> Iterator[str]:
    """A one-layer image whose only file is random, so no other local image shares its layer.

    Yields its tag (REPOSITORY:RANDOM); removed on exit. Built with ``docker import``, which
    runs no container.
    """
    token = secrets.token_hex(6)
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        payload = f"stackmatrix registry test {token}\n".encode()
        entry = tarfile.TarInfo("token")
        entry.size = len(payload)
        entry.mtime = int(time.time())
        tar.addfile(entry, io.BytesIO(payload))
    tag = f"{repository}:{token}"
    subprocess.run(
        ["docker", "import", "-", tag],
        input=archive.getvalue(),
        capture_output=True,
        check=True,
        timeout=60,
    )
    try:
        yield tag
    finally:
        subprocess.run(["docker", "image", "rm", tag], capture_output=True, check=False)
