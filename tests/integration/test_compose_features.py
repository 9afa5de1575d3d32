"""Compose features users already have, on a real engine: what an ``include:`` or ``extends:``
brings is labelled, waited for, logged and removed; services of a compose profile that is not
active are not waited for, those of an active one are; a crash loop is not ready; a port
published on IPv6 only is found."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from ._matrix import Project
from .conftest import labelled_objects

pytestmark = pytest.mark.usefixtures("docker_engine")

BOOKWORM = "debian:bookworm-slim"
RUN_LABEL = "io.stackmatrix.run"

# The tests: each line of $CHECKS is a Python expression that must hold; the result is a JUnit
# report with one testcase per line.
CHECK = """\
import os, socket, sys
from pathlib import Path
from xml.sax.saxutils import quoteattr
failures = []
for n, line in enumerate(os.environ["CHECKS"].splitlines()):
    try:
        ok = eval(line)
    except Exception as error:
        ok = f"{type(error).__name__}: {error}"
    if ok is not True:
        failures.append((n, line, ok))
cases = "".join(
    f'<testcase classname="check" name="c{n}">'
    + "".join(f"<failure message={quoteattr(f'{l}: {why}')}/>" for m, l, why in failures if m == n)
    + "</testcase>"
    for n in range(len(os.environ["CHECKS"].splitlines()))
)
Path(os.environ["STACKMATRIX_JUNIT"]).write_text(
    f'<testsuite name="check" tests="{len(os.environ["CHECKS"].splitlines())}" '
    f'failures="{len(failures)}">{cases}</testsuite>'
)
print(failures)
sys.exit(1 if failures else 0)
"""

# A service that is healthy only once it has written its mark, after a while: a run that did
# not wait for it would find no mark.
SLOW_READY = {
    "image": BOOKWORM,
    "init": True,
    "command": ["sh", "-c", "sleep 3; echo ready > /shared/$$HOSTNAME; echo side is up; sleep 600"],
    "healthcheck": {"test": ["CMD-SHELL", "ls /shared | grep -q ."], "interval": "1s",
                    "retries": 30},
}  # fmt: skip


def _project(
    root: Path,
    compose: dict[str, Any],
    checks: list[str],
    *,
    files: dict[str, dict[str, Any]] | None = None,
    ready: dict[str, Any] | None = None,
    tests_env: dict[str, str] | None = None,
) -> Project:
    """One variant whose base compose file is *compose* (beside it: *files*); the tests assert
    each of *checks* (Python expressions) on the host."""
    for name, data in (files or {}).items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(yaml.safe_dump(data, sort_keys=False))
    (root / "compose.yaml").write_text(yaml.safe_dump(compose, sort_keys=False))
    (root / "check.py").write_text(CHECK)
    spec = {
        "name": "cf",
        "compose": "compose.yaml",
        "axes": {"flavor": ["a"]},
        "ready": ready or {},
        "tests": {
            "command": ["python3", "check.py"],
            "env": {"CHECKS": "\n".join(checks), **(tests_env or {})},
            "timeout": "60s",
        },
        "run": {"jobs": 1, "up_timeout": "40s", "down_timeout": "2s"},
    }
    (root / "matrix.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return Project(root)


def _variant(project: Project) -> dict[str, Any]:
    (variant,) = project.journal()["variants"]
    assert isinstance(variant, dict)
    return variant


def _of_project(project_name: str) -> dict[str, dict[str, str]]:
    """Every container, network and volume of a compose project -> its labels."""
    found: dict[str, dict[str, str]] = {}
    for kind in ("container", "network", "volume"):
        listing = ["ls", "-aq"] if kind == "container" else ["ls", "-q"]
        ids = subprocess.run(
            ["docker", kind, *listing, "--filter",
             f"label=com.docker.compose.project={project_name}"],
            capture_output=True, text=True, check=True,
        ).stdout.split()  # fmt: skip
        if not ids:
            continue
        inspected = json.loads(
            subprocess.run(
                ["docker", kind, "inspect", *ids], capture_output=True, text=True, check=True
            ).stdout
        )
        for item in inspected:
            labels = (item.get("Config") or {}).get("Labels") or item.get("Labels") or {}
            name = item.get("Name") or item["Id"]
            found[f"{kind}:{name.lstrip('/')}"] = labels
    return found


def _gc(project: Project, run_id: str) -> None:
    done = project.run("gc", "--run", run_id)
    assert done.returncode == 0, done.stdout + done.stderr


# -- include: and extends: --------------------------------------------------------------------


def test_what_include_and_extends_bring_is_labelled_waited_for_logged_and_removed(
    tmp_path: Path,
) -> None:
    shared = tmp_path / "side" / "shared"
    shared.mkdir(parents=True)
    files = {
        "side/extra.yaml": {
            "services": {
                "side": {**SLOW_READY, "volumes": ["./shared:/shared", "sidedata:/data"]},
                "base": {"image": BOOKWORM, "init": True, "command": ["sleep", "600"]},
            },
            "volumes": {"sidedata": {}},
        },
    }
    compose = {
        "include": ["side/extra.yaml"],
        "services": {"main": {"extends": {"file": "side/extra.yaml", "service": "base"}}},
    }
    # The mark exists when the tests start: `side` (from the include) was waited for.
    checks = [f"any(Path({str(shared)!r}).iterdir())"]
    project = _project(tmp_path, compose, checks, files=files)

    done = project.run("run", "--keep")
    run_id = project.journal()["run_id"]
    variant = _variant(project)
    try:
        objects = _of_project(variant["project"])
    finally:
        _gc(project, run_id)
    left = _of_project(variant["project"])

    assert done.returncode == 0, done.stdout + done.stderr
    assert variant["status"] == "passed", variant
    kinds = sorted(key.split(":")[0] for key in objects)
    assert kinds == ["container", "container", "container", "network", "volume"], objects
    unlabelled = [key for key, labels in objects.items() if labels.get(RUN_LABEL) != run_id]
    assert unlabelled == []
    assert sorted(variant["logs"]) == ["base", "main", "side"]
    assert "side is up" in (project.run_dir() / "flavor-a" / "logs" / "side.log").read_text()
    assert left == {}, "gc left objects of the run behind"


# -- profiles: --------------------------------------------------------------------------------


def _profiles_project(root: Path) -> Project:
    compose = {
        "services": {
            "app": {"image": BOOKWORM, "init": True, "command": ["sleep", "600"]},
            # Never healthy: a run that waits for it fails.
            "debug": {"image": BOOKWORM, "init": True, "command": ["sleep", "600"],
                      "profiles": ["debug"],
                      "healthcheck": {"test": ["CMD", "false"], "interval": "1s", "retries": 1}},
            "seed": {**SLOW_READY, "profiles": ["seed"], "volumes": [f"{root}/shared:/shared"]},
        },
    }  # fmt: skip
    (root / "shared").mkdir()
    return _project(root, compose, [f"any(Path({str(root / 'shared')!r}).iterdir())"])


def test_a_service_of_a_compose_profile_that_is_not_active_is_not_waited_for(
    tmp_path: Path,
) -> None:
    project = _profiles_project(tmp_path)

    done = project.run("run", env={"COMPOSE_PROFILES": "seed"})

    variant = _variant(project)
    assert done.returncode == 0, done.stdout + done.stderr
    assert variant["status"] == "passed", variant
    # `seed` (active) was waited for: its mark was there when the tests ran; `debug` was not
    # started, nor waited for, nor logged.
    assert sorted(variant["logs"]) == ["app", "seed"]
    assert labelled_objects(project.journal()["run_id"]) == set()


# -- a crash loop -----------------------------------------------------------------------------


def test_a_service_in_a_crash_loop_fails_the_variant_with_its_exit_code_and_log(
    tmp_path: Path,
) -> None:
    compose = {
        "services": {
            "app": {"image": BOOKWORM, "init": True, "restart": "always",
                    "command": ["sh", "-c", "echo 'cannot open config' >&2; exit 4"],
                    "healthcheck": {"test": ["CMD", "test", "-e", "/tmp/ok"], "interval": "1s",
                                    "retries": 60}},
        },
    }  # fmt: skip
    project = _project(tmp_path, compose, ["True"])

    done = project.run("run")

    variant = _variant(project)
    assert done.returncode == 3, done.stdout + done.stderr
    assert variant["status"] == "error"
    assert variant["reason"].startswith(
        "service 'app' is crash-looping: it exited with code 4 and was restarted "
    ), variant["reason"]  # final at once, not "did not become healthy within 40 s"
    assert "cannot open config" in variant["detail"]
    assert "tests" not in variant["phases"]
    assert labelled_objects(project.journal()["run_id"]) == set()


# -- a port published on IPv6 only --------------------------------------------------------------


def test_a_port_published_on_ipv6_only_is_discovered_and_probed(tmp_path: Path) -> None:
    compose = {
        "services": {
            "web": {"image": BOOKWORM, "init": True,
                    "command": ["perl", "-MIO::Socket::INET", "-e",
                                "my $$s = IO::Socket::INET->new(LocalAddr => '0.0.0.0:7000',"
                                " Listen => 5, ReuseAddr => 1) or die; while (my $$c = $$s->accept)"
                                " { print $$c qq(hello\\n); close $$c }"],
                    "ports": [{"target": 7000, "host_ip": "::1"}]},
        },
    }  # fmt: skip
    checks = [
        "os.environ['WEB'].startswith('[::1]:')",
        "socket.create_connection(('::1', int(os.environ['WEB'].rsplit(':', 1)[1])), 5)"
        ".recv(10) == b'hello\\n'",
    ]
    project = _project(
        tmp_path,
        compose,
        checks,
        ready={"web": {"tcp": 7000}},
        tests_env={"WEB": "${{ ports.web.7000 }}"},
    )

    done = project.run("run")

    variant = _variant(project)
    assert done.returncode == 0, done.stdout + done.stderr
    assert variant["status"] == "passed", variant
    assert variant["ports"]["web"]["7000"].startswith("[::1]:")
    assert labelled_objects(project.journal()["run_id"]) == set()


def test_a_variant_turns_compose_profiles_on_from_the_matrix_and_keeps_a_capped_log(
    tmp_path: Path,
) -> None:
    """``compose_profiles:`` of an overlay turns a profile on for the variants it applies to
    (their services come up and are waited for); ``run.log_cap`` bounds each service's log."""
    project = _profiles_project(tmp_path)
    spec = yaml.safe_load((tmp_path / "matrix.yaml").read_text())
    compose = yaml.safe_load((tmp_path / "compose.yaml").read_text())
    # 200 kB of log, then sleep: the variant keeps 16 KiB of it, head and tail.
    compose["services"]["app"]["command"] = [
        "sh", "-c", "seq -f 'line %06g of the log' 1 10000; sleep 600"
    ]  # fmt: skip
    (tmp_path / "compose.yaml").write_text(yaml.safe_dump(compose, sort_keys=False))
    spec["axes"] = {"flavor": ["a", "b"]}
    spec["overlays"] = [{"when": {"flavor": "a"}, "compose_profiles": ["seed"]}]
    spec["run"]["log_cap"] = "16KiB"
    spec["tests"]["env"]["CHECKS"] = "True"
    (tmp_path / "matrix.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))

    done = project.run("run")

    assert done.returncode == 0, done.stdout + done.stderr
    variants = {v["id"]: v for v in project.journal()["variants"]}
    assert sorted(variants["flavor-a"]["logs"]) == ["app", "seed"]  # on, and waited for
    assert sorted(variants["flavor-b"]["logs"]) == ["app"]
    assert any((tmp_path / "shared").iterdir())  # seed wrote its mark before the tests
    log = project.run_dir() / "flavor-b" / "logs" / "app.log"
    text = log.read_text()
    assert log.stat().st_size <= 16 * 1024 + 200, log.stat().st_size
    assert text.startswith("line 000001 of the log")
    assert "bytes of this log cut here" in text
    assert "line 010000 of the log" in text  # the tail is kept
    assert labelled_objects(project.journal()["run_id"]) == set()
