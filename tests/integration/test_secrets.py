"""Secrets from every source stay out of every artifact of a real run.

One matrix gives its services and tests secret values from each place a value can come from:
a service's ``environment:``, its ``env_file:``, build ``args`` (of an image the prepare stage
builds, of one a variant builds, and of builds that fail), host variables the compose file
interpolates (``${CI_TOKEN}``, ``${PGPASS}`` under a secret name, and ``${VAULT_TOKEN}`` from the
project's ``.env``), a host variable listed
under the matrix's ``secrets:``, and ``tests.env``. The services print them in their logs,
the builds in their output, the tests on stdout and stderr and in their JUnit failures. Then
every file of the run directory, the captured terminal and the step summary are searched for
each value: none may be found. The compose files stackmatrix writes are the one place a
literal value has to be (compose reads it there): they are checked to be 0600.
"""

from __future__ import annotations

import json
import secrets
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from python_on_whales import DockerClient

from ._matrix import Project
from .conftest import labelled_objects
from .faults._support import by_id, remove_images

pytestmark = pytest.mark.usefixtures("docker_engine")

BOOKWORM = "debian:bookworm-slim"
MASK = "••••••"

LEAK_ALL = '''\
"""A careless test suite: prints every secret it can find and puts them in its JUnit."""
import json, os, sys
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

values = json.loads(Path("leaks.json").read_text())[os.environ["STACKMATRIX_VARIANT"]]
said = " ".join(values)
print("stdout:", said)
print("stderr:", said, file=sys.stderr)
with open(os.environ["STACKMATRIX_JUNIT"], "w", encoding="utf-8") as report:
    report.write(
        '<?xml version="1.0" encoding="utf-8"?><testsuite name="leaky">'
        '<testcase classname="leaky" name="test_login">'
        f"<failure message={quoteattr('refused: ' + said)}>{escape(said)}</failure>"
        f"<system-out>{escape(said)}</system-out></testcase></testsuite>"
    )
sys.exit(1)
'''


@dataclass(frozen=True)
class _Run:
    root: Path
    run_dir: Path
    output: str
    step_summary: Path
    journal: dict[str, Any]
    values: dict[str, str]  # where it came from -> the secret value


def _write_project(root: Path, tag: str) -> tuple[Project, dict[str, str], dict[str, str]]:
    values = {
        "environment literal": f"envlit-{tag}",
        "env_file": f"envfile-{tag}",
        "interpolated under a secret name": f"pgpass-{tag}",
        "interpolated secret-named host var": f"citoken-{tag}",
        "host var listed in secrets:": f"phrase-{tag}",
        "build arg (prepare stage)": f"npmarg-{tag}",
        "build arg (variant build)": f"buildpw-{tag}",
        "build arg (failed prepare build)": f"failpw-{tag}",
        "build arg (failed variant build)": f"failvar-{tag}",
        "tests.env secret name": f"apitok-{tag}",
        "tests.env listed in secrets:": f"shopdsn-{tag}",
        "project .env, interpolated": f"dotenv-{tag}",
    }
    host = {
        "PGPASS": values["interpolated under a secret name"],
        "CI_TOKEN": values["interpolated secret-named host var"],
        "DEPLOY_PHRASE": values["host var listed in secrets:"],
    }
    # What each variant's tests know: the run's values, and those of their own stack.
    common = [
        values[key]
        for key in values
        if key.startswith(("interpolated secret-named", "host var", "tests.env"))
    ]
    known = {
        "flavor-a": [
            *common,
            values["environment literal"],
            values["env_file"],
            values["interpolated under a secret name"],
            values["build arg (prepare stage)"],
            values["project .env, interpolated"],
        ],
        "flavor-b": [*common, values["build arg (variant build)"]],
    }
    (root / "leaks.json").write_text(json.dumps(known))
    (root / "leak_all.py").write_text(LEAK_ALL)
    # Compose interpolates with the project directory's .env too (the host's values win).
    (root / ".env").write_text(f"VAULT_TOKEN={values['project .env, interpolated']}\n")
    (root / "db.env").write_text(f"# the database\nDB_PASSWORD={values['env_file']}\nHOST=db\n")
    for name, step in {
        "ok": 'RUN echo "building with $ARG_TOKEN"',
        "fail": 'RUN echo "cannot build with $ARG_TOKEN" && exit 1',
    }.items():
        (root / name).mkdir()
        (root / name / "Dockerfile").write_text(
            f'FROM {BOOKWORM}\nARG ARG_TOKEN\n{step}\nCMD ["sleep", "600"]\n'
        )
    box = {"image": BOOKWORM, "init": True}
    db_says = "db: $$ADMIN_PASSWORD $$DB_PASSWORD $$POSTGRES_PASSWORD $$HOOK $$GREETING $$RELAY"
    services_a = {
        "db": {
            **box,
            "env_file": ["db.env"],
            "environment": {
                "ADMIN_PASSWORD": values["environment literal"],
                "POSTGRES_PASSWORD": "${PGPASS}",
                "HOOK": "${CI_TOKEN}",
                "GREETING": "${DEPLOY_PHRASE}",
                "RELAY": "${VAULT_TOKEN}",
            },
            "command": ["sh", "-c", f'echo "{db_says}"; echo "{db_says}" >&2; exec sleep 600'],
        },
        "built": {
            "image": f"stackmatrix-it-secrets-{tag}:ok",
            "build": {"context": "ok", "args": {"ARG_TOKEN": values["build arg (prepare stage)"]}},
            "init": True,
        },
    }

    def build(context: str, value: str, image: str | None = None) -> dict[str, Any]:
        service: dict[str, Any] = {
            "build": {"context": context, "args": {"ARG_TOKEN": value}},
            "init": True,
        }
        if image:
            service["image"] = image
        return {"local": service}

    spec = {
        "name": "secrets",
        "axes": {"flavor": ["a", "b", "c", "d"]},
        "secrets": ["DEPLOY_PHRASE", "SHOP_DSN"],
        "overlays": [
            {"when": {"flavor": "a"}, "compose": {"services": services_a}},
            {
                "when": {"flavor": "b"},
                "compose": {"services": build("ok", values["build arg (variant build)"])},
            },
            {
                "when": {"flavor": "c"},
                "compose": {
                    "services": build(
                        "fail",
                        values["build arg (failed prepare build)"],
                        f"stackmatrix-it-secrets-{tag}:fail",
                    )
                },
            },
            {
                "when": {"flavor": "d"},
                "compose": {"services": build("fail", values["build arg (failed variant build)"])},
            },
        ],
        "tests": {
            "command": ["python3", "leak_all.py"],
            "env": {
                "API_TOKEN": values["tests.env secret name"],
                "SHOP_DSN": values["tests.env listed in secrets:"],
            },
            "timeout": "60s",
        },
        "run": {"jobs": 2, "up_timeout": "60s", "down_timeout": "2s"},
    }
    (root / "matrix.yaml").write_text(json.dumps(spec, indent=2))
    return Project(root), values, host


@pytest.fixture(scope="module")
def secret_run(tmp_path_factory: pytest.TempPathFactory, docker_engine: DockerClient) -> _Run:
    root = tmp_path_factory.mktemp("secrets-everywhere")
    tag = secrets.token_hex(4)
    project, values, host = _write_project(root, tag)
    step_summary = root / "step-summary.md"
    try:
        done = project.run(
            "run",
            env={"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(step_summary), **host},
            timeout=300,
        )
        journal = project.journal()
    finally:
        # Compose names the variants' own builds PROJECT-SERVICE, the project holding the run id.
        listed = subprocess.run(
            ["docker", "image", "ls", "--format", "{{.Repository}}:{{.Tag}}"],
            capture_output=True, text=True, check=False,
        ).stdout.split()  # fmt: skip
        run_ids = [p.name for p in (root / ".stackmatrix" / "runs").glob("2*")]
        remove_images([name for name in listed if tag in name or any(r in name for r in run_ids)])
    assert done.returncode == 3, done.stdout + done.stderr
    assert labelled_objects(journal["run_id"]) == set()
    return _Run(
        root=root,
        run_dir=project.run_dir(),
        output=done.stdout + done.stderr,
        step_summary=step_summary,
        journal=journal,
        values=values,
    )


def test_the_run_really_printed_every_secret_somewhere(secret_run: _Run) -> None:
    """The leaks were real: each value reached a log, a build or a report, masked."""
    variants = by_id(secret_run.journal)
    assert variants["flavor-a"]["status"] == "failed"
    assert variants["flavor-b"]["status"] == "failed"
    assert variants["flavor-c"]["status"] == "error"
    assert variants["flavor-d"]["status"] == "error"
    run_dir = secret_run.run_dir
    db_log = (run_dir / "flavor-a" / "logs" / "db.log").read_text()
    assert db_log.count(MASK) >= 5, db_log  # five values
    assert f"building with {MASK}" in (run_dir / "flavor-b" / "build.log").read_text()
    assert f"cannot build with {MASK}" in variants["flavor-c"]["detail"]
    assert f"cannot build with {MASK}" in variants["flavor-d"]["detail"]
    tests_log = (run_dir / "flavor-a" / "tests.log").read_text()
    assert tests_log.count(MASK) >= 2 * 8, tests_log  # the eight values flavor-a knows
    assert "::error " in secret_run.output  # annotations were printed


def test_no_secret_is_in_any_file_of_the_run_directory(secret_run: _Run) -> None:
    leaks = []
    composes = []
    for path in sorted(secret_run.run_dir.rglob("*")):
        if not path.is_file():
            continue
        relative = str(path.relative_to(secret_run.run_dir))
        if path.name == "compose.yaml":  # compose reads literal values from it: 0600
            composes.append(relative)
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, relative
            continue
        data = path.read_bytes()
        leaks += [
            f"{source} in {relative}"
            for source, value in secret_run.values.items()
            if value.encode() in data
        ]
    assert leaks == []
    assert len(composes) == 4


def test_no_secret_is_on_the_terminal_or_in_the_step_summary(secret_run: _Run) -> None:
    places = {"terminal": secret_run.output, "step summary": secret_run.step_summary.read_text()}
    leaks = [
        f"{source} in {place}"
        for source, value in secret_run.values.items()
        for place, text in places.items()
        if value in text
    ]
    assert leaks == []


def test_report_rebuilt_later_stays_masked(secret_run: _Run) -> None:
    """`stackmatrix report` over the run directory (a later CI step) reads only masked files."""
    out = secret_run.root / "again"
    done = subprocess.run(
        [sys.executable, "-m", "stackmatrix", "report", str(secret_run.run_dir), "--out", str(out)],
        capture_output=True, text=True, check=False, cwd=secret_run.root,
    )  # fmt: skip
    assert done.returncode in (0, 1), done.stdout + done.stderr
    texts = [done.stdout + done.stderr]
    texts += [p.read_text(errors="replace") for p in out.rglob("*") if p.is_file()]
    assert [s for s, v in secret_run.values.items() if any(v in t for t in texts)] == []
