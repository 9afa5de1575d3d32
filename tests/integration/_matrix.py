"""Build small real matrices for integration tests and drive the real CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).parent
# A perl-base echo server (perl-base is in every Debian minbase image) that prefixes replies
# with the variant's values, so a test can tell which stack it reached.
ECHO_SERVER = (
    "use IO::Socket::INET; $|=1;"
    "my $s = IO::Socket::INET->new(LocalAddr => '0.0.0.0:7000', Listen => 5, ReuseAddr => 1)"
    " or die $!; print qq(listening\\n);"
    "while (my $c = $s->accept) { my $l = <$c>; print $c qq(TAG:$l); close $c }"
)


def echo_service(tag: str) -> dict[str, Any]:
    """A compose service running the echo server, healthy once it listens."""
    return {
        "image": "debian:bookworm-slim",
        "init": True,
        "command": ["perl", "-e", ECHO_SERVER.replace("$", "$$").replace("TAG", tag)],
        "ports": ["7000"],
        "healthcheck": {
            "test": [
                "CMD", "perl", "-MIO::Socket::INET", "-e",
                "exit !IO::Socket::INET->new(q(127.0.0.1:7000))",
            ],
            "interval": "1s",
            "timeout": "2s",
            "retries": 30,
        },
    }  # fmt: skip


@dataclass(frozen=True)
class Project:
    """A folder holding matrix.yaml and the check script."""

    root: Path

    @property
    def matrix(self) -> Path:
        return self.root / "matrix.yaml"

    def run(
        self, *args: str, env: dict[str, str] | None = None, timeout: float = 240
    ) -> subprocess.CompletedProcess[str]:
        """`stackmatrix ARGS` in this folder, as a user would type it."""
        return subprocess.run(
            [sys.executable, "-m", "stackmatrix", *args],
            cwd=self.root,
            env={**os.environ, "NO_COLOR": "1", **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def popen(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        """Start `stackmatrix ARGS` in the background (for signal tests)."""
        return subprocess.Popen(
            [sys.executable, "-m", "stackmatrix", *args],
            cwd=self.root,
            env={**os.environ, "NO_COLOR": "1", **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def journal(self, out: str = ".stackmatrix") -> dict[str, Any]:
        """The latest run.json."""
        data: dict[str, Any] = json.loads(
            (self.root / out / "runs" / "latest" / "run.json").read_text()
        )
        return data

    def run_dir(self, out: str = ".stackmatrix") -> Path:
        """The latest run directory."""
        return (self.root / out / "runs" / "latest").resolve()


def make_project(
    root: Path,
    *,
    axes: dict[str, list[str]] | None = None,
    include: list[dict[str, Any]] | None = None,
    extra_services: dict[str, Any] | None = None,
    ready: dict[str, Any] | None = None,
    check_mode: str = "pass",
    tests_timeout: str = "60s",
    run: dict[str, Any] | None = None,
    tests_env: dict[str, str] | None = None,
) -> Project:
    """Write a matrix whose every variant runs an echo stack and the echo check suite."""
    axes = axes or {"flavor": ["a", "b"]}
    tag = "-".join(f"${{{{ matrix.{axis} }}}}" for axis in axes)
    expect = "-".join(f"${{{{ matrix.{axis} }}}}" for axis in axes)
    services: dict[str, Any] = {"echo": echo_service(tag)}
    services.update(extra_services or {})
    shutil.copy(HERE / "stacks" / "echo_check.py", root / "echo_check.py")
    spec: dict[str, Any] = {
        "name": "it",
        "axes": axes,
        "overlays": [{"when": {}, "compose": {"services": services}}],
        "ready": ready if ready is not None else {"echo": {"tcp": 7000}},
        "tests": {
            "command": ["python3", "echo_check.py"],
            "env": {
                "ECHO_ADDR": "${{ ports.echo.7000 }}",
                "EXPECT": expect,
                "CHECK_MODE": check_mode,
                **(tests_env or {}),
            },
            "timeout": tests_timeout,
        },
        "run": {"jobs": 2, "up_timeout": "60s", "down_timeout": "2s", **(run or {})},
    }
    if include:
        spec["include"] = include
    (root / "matrix.yaml").write_text(
        textwrap.dedent("# written by the integration tests\n")
        + yaml.safe_dump(spec, sort_keys=False)
    )
    return Project(root)
