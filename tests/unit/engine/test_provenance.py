"""What a variant's provenance says, without an engine.

The stack is a real ``Stack`` whose containers are what ``docker inspect`` printed for one
compose project (``inspect_project.json``: db on postgres:15, cache on redis:7, app and a
finished migrate job on one local image, hog on debian). Engine calls go to a scripted
``run_engine`` that records them; servers are local sockets (``peers.py``); host commands are
real processes.
"""

from __future__ import annotations

import json
import os
import stat
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from python_on_whales.exceptions import DockerException

from stackmatrix.engine import provenance
from stackmatrix.engine.job import VariantJob
from stackmatrix.engine.provenance import collect_provenance, parse_packages
from stackmatrix.engine.stack import Stack
from stackmatrix.errors import EngineError
from stackmatrix.matrix.expand import expand
from stackmatrix.redact import MASK
from stackmatrix.results.journal import Provenance, ServiceProvenance
from stackmatrix.spec.load import load_spec
from tests.unit.engine.peers import pg_auth, postgres_peer, redis_peer, serving
from tests.unit.engine.test_probes import PG_SESSION

GOLDEN = Path(__file__).with_name("inspect_project.json")
PG_ID = "sha256:3b1f0a6c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a"
REDIS_ID = "sha256:7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e"
SHOP_ID = "sha256:5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f"
DEBIAN_ID = "sha256:2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f2a3b"
PG_DIGEST = "postgres@sha256:" + "ab" * 32


@dataclass
class Engine:
    """The engine as a script: ``image inspect`` prints *digests*, ``docker exec`` in a
    container prints what *execs* says for its command (a missing entry fails like a missing
    binary), ``compose logs`` prints *log*. Every call is recorded."""

    digests: dict[str, str] = field(default_factory=dict)
    execs: dict[tuple[str, ...], str] = field(default_factory=dict)
    log: str = ""
    calls: list[list[str]] = field(default_factory=list)
    fail: Exception | None = None
    no_shell: bool = False  # an image without ``sh``: the wrapped command cannot start
    deadlines: list[int] = field(default_factory=list)  # of each ``timeout -s KILL``
    env_files: list[str] = field(default_factory=list)  # what each ``--env-file`` held

    def __call__(
        self,
        command: Sequence[str],
        *,
        what: str,
        timeout: float | None = None,
        cancel: threading.Event | None = None,
        sink: Callable[[bytes], None] | None = None,
        idle: bool = False,
    ) -> str:
        argv = [str(part) for part in command]
        self.calls.append(argv)
        if self.fail is not None:
            raise self.fail
        if "inspect" in argv:
            ids = argv[argv.index("--format") + 2 :]
            return "".join(f"{i}\t{self.digests.get(i, '')}\n" for i in ids)
        if "exec" in argv:
            container, command = _exec_of(argv)
            if command[:3] == ["sh", "-c", provenance._UNDER_TIMEOUT]:
                if self.no_shell:
                    said = b'exec: "sh": executable file not found in $PATH: unknown'
                    raise DockerException(argv, 126, b"", said)
                self.deadlines.append(int(command[3]))
                command = command[4:]
            if "--env-file" in argv:
                env_file = Path(argv[argv.index("--env-file") + 1])
                self.env_files.append(env_file.read_text(encoding="utf-8"))
            asked = (container, *command)
            if asked not in self.execs:
                raise DockerException(argv, 127, b"", b"executable file not found")
            out = self.execs[asked].encode()
        else:
            out = self.log.encode()
        if sink is None:
            return out.decode()
        sink(out)
        return ""

    def execs_of(self, container: str) -> list[list[str]]:
        return [c for c in self.calls if "exec" in c and _exec_of(c)[0] == container]


def _exec_of(argv: list[str]) -> tuple[str, list[str]]:
    """(the first 12 characters of the container, the command) of a ``docker exec``."""
    rest = argv[argv.index("exec") + 1 :]
    if rest[0] == "--env-file":
        rest = rest[2:]
    return rest[0][:12], rest[1:]


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch) -> Engine:
    scripted = Engine()
    monkeypatch.setattr(provenance, "run_engine", scripted)
    monkeypatch.setattr("stackmatrix.engine.stack.run_engine", scripted)
    return scripted


def _containers() -> dict[str, str]:
    """Service -> the first 12 characters of its container id, as the golden has them."""
    found: list[dict[str, Any]] = json.loads(GOLDEN.read_text(encoding="utf-8"))
    return {c["Config"]["Labels"]["com.docker.compose.service"]: c["Id"][:12] for c in found}


def _job(tmp_path: Path, body: str, *, env: dict[str, str] | None = None) -> VariantJob:
    (tmp_path / "matrix.yaml").write_text(
        "name: shop\naxes: {v: [a]}\n"
        "overlays: [{compose: {services: {db: {image: postgres:15}, cache: {image: redis:7},"
        " app: {image: local/shop}, migrate: {image: local/shop}, hog: {image: debian}}}}]\n"
        + body,
        encoding="utf-8",
    )
    spec = load_spec(tmp_path / "matrix.yaml")
    return VariantJob(
        spec=spec,
        variant=expand(spec)[0],
        run_id="20261201-120000-abcd",
        run_dir=tmp_path / "runs",
        base_env=env or {"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
    )


def _stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Stack:
    """A stack whose one inspect is the golden project's (as ``refresh`` reads it)."""
    stack = Stack(
        project="shop-a",
        compose_file=tmp_path / "compose.yaml",
        project_directory=tmp_path,
        services=[],
        cancel=threading.Event(),
    )
    answers = iter(["ids", GOLDEN.read_text(encoding="utf-8")])
    monkeypatch.setattr(stack, "_engine", lambda *_args, **_kw: next(answers))
    stack.refresh()
    return stack


def _collect(
    job: VariantJob,
    stack: Stack,
    ports: dict[str, dict[str, str]] | None = None,
    secrets: Sequence[str] = (),
) -> Provenance:
    job.directory.mkdir(parents=True, exist_ok=True)
    # The golden project's containers name every image: no rendered compose document needed.
    return collect_provenance(job, stack, {}, ports or {}, list(secrets))


# -- images -----------------------------------------------------------------------------------


def test_every_service_names_its_image_its_id_and_a_digest_when_it_has_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, engine: Engine
) -> None:
    engine.digests = {PG_ID: PG_DIGEST}
    found = _collect(_job(tmp_path, "tests: {command: 'true'}\n"), _stack(tmp_path, monkeypatch))

    assert {name: (s.image, s.image_id, s.digest) for name, s in found.services.items()} == {
        "app": ("local/shop:pg-15", SHOP_ID, ""),
        "cache": ("redis:7", REDIS_ID, ""),
        "db": ("postgres:15", PG_ID, PG_DIGEST),
        "hog": ("debian:bookworm-slim", DEBIAN_ID, ""),
        "migrate": ("local/shop:pg-15", SHOP_ID, ""),
    }
    # One inspect for every image of the stack, each image once (app and migrate share one).
    inspects = [c for c in engine.calls if "inspect" in c]
    assert len(inspects) == 1
    assert inspects[0][-4:] == sorted([PG_ID, REDIS_ID, SHOP_ID, DEBIAN_ID])


def test_an_image_removed_meanwhile_leaves_the_digests_of_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, engine: Engine
) -> None:
    stdout = f"{PG_ID}\t{PG_DIGEST}\n".encode()

    def partly(command: Sequence[str], **_kw: Any) -> str:
        raise DockerException(list(command), 1, stdout, b"Error: No such image: sha256:7d6e")

    monkeypatch.setattr(provenance, "run_engine", partly)
    found = _collect(_job(tmp_path, "tests: {command: 'true'}\n"), _stack(tmp_path, monkeypatch))
    assert found.services["db"].digest == PG_DIGEST
    assert found.services["cache"] == ServiceProvenance("redis:7", REDIS_ID)


# -- versions from the probes ---------------------------------------------------------------------


def test_the_postgres_and_redis_probes_read_the_servers_own_versions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, engine: Engine
) -> None:
    job = _job(tmp_path, "ready: {db: {postgres: 5432}, cache: {redis: 6379}}\n"
                         "tests: {command: 'true'}\n")  # fmt: skip
    info = b"# Server\r\nredis_version:7.2.4\r\n"
    redis = b"$" + str(len(info)).encode() + b"\r\n" + info + b"\r\n"
    with serving(postgres_peer(PG_SESSION, [])) as pg, serving(redis_peer(redis, [])) as rd:
        ports = {"db": {"5432": f"127.0.0.1:{pg}"}, "cache": {"6379": f"127.0.0.1:{rd}"}}
        found = _collect(job, _stack(tmp_path, monkeypatch), ports)

    db, cache = found.services["db"], found.services["cache"]
    assert (db.version, db.version_source) == ("15.14 (Debian 15.14-0+deb12u1)", "postgres")
    assert (cache.version, cache.version_source) == ("7.2.4", "redis")
    assert not [c for c in engine.calls if "exec" in c]  # the servers said it: nothing run
    assert found.services["hog"].version == found.services["hog"].version_source == ""


def test_a_postgres_that_wants_a_password_is_asked_inside_its_container(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, engine: Engine
) -> None:
    db = _containers()["db"]
    engine.execs = {(db, "psql", "-V"): "psql (PostgreSQL) 17.2\n"}  # no `postgres` binary
    job = _job(tmp_path, "ready: {db: {postgres: 5432}}\ntests: {command: 'true'}\n")
    with serving(postgres_peer(pg_auth(10, b"SCRAM-SHA-256\0\0"), [])) as port:
        found = _collect(job, _stack(tmp_path, monkeypatch), {"db": {"5432": f"127.0.0.1:{port}"}})

    assert (found.services["db"].version, found.services["db"].version_source) == (
        "17.2",
        "command",
    )
    assert [c[-2:] for c in engine.execs_of(db)] == [["postgres", "--version"], ["psql", "-V"]]


@pytest.mark.parametrize(
    ("reply", "asked_inside"),
    [
        (b"-NOAUTH Authentication required.\r\n", True),
        (b"-LOADING Redis is loading the dataset in memory\r\n", True),
        (b"-ERR unknown command 'INFO'\r\n", True),  # renamed away: the binary still says
        (b"-ERR max number of clients reached\r\n", True),
        (b"", True),  # hung up without a word
        # A server that speaks some other protocol on that port (the probe only pings):
        # it is no Redis, so no `redis-server --version` is looked for in its container.
        (b"echo:INFO server\n", False),
    ],
    ids=["noauth", "loading", "no-info-command", "too-many-clients", "hang-up", "not-redis"],
)
def test_a_redis_probe_asks_inside_only_when_the_server_may_still_say_its_version(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    engine: Engine,
    reply: bytes,
    asked_inside: bool,
) -> None:
    cache = _containers()["cache"]
    engine.execs = {(cache, "redis-server", "--version"): "Redis server v=7.0.15 sha=0:0\n"}
    job = _job(tmp_path, "ready: {cache: {redis: 6379}}\ntests: {command: 'true'}\n")
    with serving(redis_peer(reply, [])) as port:
        ports = {"cache": {"6379": f"127.0.0.1:{port}"}}
        found = _collect(job, _stack(tmp_path, monkeypatch), ports)

    cache_said = (found.services["cache"].version, found.services["cache"].version_source)
    if asked_inside:
        assert cache_said == ("7.0.15", "command")
        assert [c[-2:] for c in engine.execs_of(cache)] == [["redis-server", "--version"]]
    else:
        assert cache_said == ("", "")
        assert engine.execs_of(cache) == []


def test_a_probe_whose_port_is_not_published_asks_nothing_over_the_network(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, engine: Engine
) -> None:
    job = _job(tmp_path, "ready: {db: {postgres: 5432}}\ntests: {command: 'true'}\n")
    found = _collect(job, _stack(tmp_path, monkeypatch), {"db": {}})
    assert found.services["db"].version == ""


# -- versions the spec asks ---------------------------------------------------------------------


def test_the_spec_asks_by_command_and_by_log_and_overrides_the_probe(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, engine: Engine
) -> None:
    ids = _containers()
    engine.execs = {
        (ids["db"], "cat", "/etc/pg-build"): "\n\n  15.99-custom  \nsecond line\n",
        (ids["cache"], "shop", "--version"): "shop, build 7 (v2.31.4-rc1) on linux\n",
    }
    engine.log = "booting\nhog 0.9 started, listening\nhog 1.0 started again\n"
    job = _job(
        tmp_path,
        r"""
ready: {db: {postgres: 5432}}
versions:
  db: {command: [cat, /etc/pg-build]}
  cache: {command: [shop, --version], match: 'v(\d+\.\d+\.\d+\S*)\)'}
  hog: {log: 'hog \S+ started'}
tests: {command: 'true'}
""",
    )
    seen: list[tuple[int, dict[str, str]]] = []
    with serving(postgres_peer(PG_SESSION, seen)) as port:
        found = _collect(job, _stack(tmp_path, monkeypatch), {"db": {"5432": f"127.0.0.1:{port}"}})

    versions = {name: (s.version, s.version_source) for name, s in found.services.items()}
    assert versions == {
        "db": ("15.99-custom", "command"),  # the spec's answer, not the server's
        "cache": ("2.31.4-rc1", "command"),
        "hog": ("hog 0.9 started", "log"),  # no group: the whole first match (a stopped one's)
        "app": ("", ""),
        "migrate": ("", ""),
    }
    assert seen == []  # the probe's server was never asked


@pytest.mark.parametrize(
    ("log", "version"),
    [("started, version 9.1\n" + "x" * 500, "9.1"), ("x" * 500 + "\nstarted, version 9.1\n", "")],
    ids=["in-the-head", "past-the-head"],
)
def test_a_log_pattern_reads_only_the_head_of_the_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, engine: Engine, log: str, version: str
) -> None:
    monkeypatch.setattr(provenance, "LOG_HEAD", 64)
    engine.log = log
    job = _job(tmp_path, "versions: {hog: {log: 'version (\\S+)'}}\ntests: {command: 'true'}\n")
    assert _collect(job, _stack(tmp_path, monkeypatch)).services["hog"].version == version
    (logs,) = [c for c in engine.calls if "logs" in c]
    assert logs[-4:] == ["logs", "--no-log-prefix", "--no-color", "hog"]


def test_a_command_in_a_stopped_container_is_not_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, engine: Engine
) -> None:
    ids = _containers()  # migrate: a one-shot job that exited 0; app: crashed
    engine.execs = {(ids[s], "cat", "/v"): "1.0\n" for s in ("migrate", "app")}
    job = _job(
        tmp_path,
        "versions: {migrate: {command: [cat, /v]}, app: {command: [cat, /v]}}\n"
        "tests: {command: 'true'}\n",
    )
    found = _collect(job, _stack(tmp_path, monkeypatch))
    assert found.services["migrate"].version == found.services["app"].version == ""
    assert [c for c in engine.calls if "exec" in c] == []


def test_a_version_holding_a_secret_comes_out_masked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, engine: Engine
) -> None:
    cache = _containers()["cache"]
    engine.execs = {(cache, "cat", "/v"): "2.0+build.tok-5e3c7a1\n"}
    printing = "echo tok-5e3c7a1==1.0; echo lib==tok-5e3c7a1"
    job = _job(
        tmp_path,
        "versions: {cache: {command: [cat, /v]}}\n"
        f"tests: {{command: 'true', versions: [sh, -c, '{printing}']}}\n",
    )
    found = _collect(job, _stack(tmp_path, monkeypatch), secrets=["tok-5e3c7a1"])
    assert found.services["cache"].version == f"2.0+build.{MASK}"
    assert found.packages == {MASK: "1.0", "lib": MASK}
    assert "tok-5e3c7a1" not in repr(found)


def test_a_secret_the_tests_environment_puts_together_is_masked_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, engine: Engine
) -> None:
    script = "import os; print('shop==' + os.environ['SHOP_TOKEN'])"
    job = _job(
        tmp_path,
        "tests:\n  command: 'true'\n  env: {SHOP_TOKEN: 'tok-${{ matrix.v }}-7f3e'}\n"
        f"  versions: [{sys.executable}, -c, {json.dumps(script)}]\n",
    )
    found = _collect(job, _stack(tmp_path, monkeypatch), secrets=[])  # only known expanded
    assert found.packages == {"shop": MASK}


def test_a_long_version_is_cut_after_masking_so_no_part_of_a_secret_shows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, engine: Engine
) -> None:
    cache = _containers()["cache"]
    hidden = "s3cr3t-value-1234"
    engine.execs = {(cache, "cat", "/v"): "x" * 90 + hidden + "\n"}
    job = _job(tmp_path, "versions: {cache: {command: [cat, /v]}}\ntests: {command: 'true'}\n")
    found = _collect(job, _stack(tmp_path, monkeypatch), secrets=[hidden])
    assert found.services["cache"].version == ("x" * 90 + MASK)[:100]
    assert "s3cr" not in found.services["cache"].version


# -- where the tests run ------------------------------------------------------------------------


def _executable(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def test_on_the_host_the_python3_on_the_tests_path_is_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, engine: Engine
) -> None:
    bin_dir = tmp_path / "venv-bin"
    bin_dir.mkdir()
    _executable(bin_dir / "python3", "#!/bin/sh\necho 3.99.1\n")
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}"}
    job = _job(tmp_path, "tests: {command: 'true'}\n", env=env)
    assert _collect(job, _stack(tmp_path, monkeypatch)).python == "3.99.1"


def test_without_a_python3_where_the_tests_run_python_is_empty(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, engine: Engine
) -> None:
    bin_dir = tmp_path / "empty-bin"
    bin_dir.mkdir()
    job = _job(tmp_path, "tests: {command: 'true'}\n", env={"PATH": str(bin_dir)})
    assert _collect(job, _stack(tmp_path, monkeypatch)).python == ""


def test_the_packages_command_runs_on_the_host_with_the_tests_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, engine: Engine
) -> None:
    script = (
        "import os; print('Package    Version'); print('---------- -------');"
        " print('shop       ' + os.environ['SHOP_VERSION']); print('pydantic==2.11.7');"
        " print('[notice] A new release of pip is available'); print('-e git+https://x/y#egg=z')"
    )
    job = _job(
        tmp_path,
        "tests:\n  command: 'true'\n  env: {SHOP_VERSION: '1.4.0'}\n"
        f"  versions: [{sys.executable}, -c, {json.dumps(script)}]\n",
    )
    found = _collect(job, _stack(tmp_path, monkeypatch))
    assert found.packages == {"shop": "1.4.0", "pydantic": "2.11.7"}
    assert list(job.directory.iterdir()) == []  # its output is read, not left behind


def test_in_a_service_python_and_packages_are_asked_inside_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, engine: Engine
) -> None:
    cache = _containers()["cache"]
    engine.execs = {
        (cache, *provenance.PYTHON_VERSION): "3.12.8\n",
        (cache, "pip", "freeze"): "shop==1.4.0\nrequests==2.32.3\n",
    }
    job = _job(tmp_path, "tests: {command: 'true', where: cache, versions: 'pip freeze'}\n")
    found = _collect(job, _stack(tmp_path, monkeypatch))
    assert (found.python, found.packages) == ("3.12.8", {"shop": "1.4.0", "requests": "2.32.3"})


def test_a_packages_command_that_hangs_is_cut_at_its_deadline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, engine: Engine
) -> None:
    monkeypatch.setattr(provenance, "PACKAGES_TIMEOUT", 0.5)
    job = _job(tmp_path, "tests: {command: 'true', versions: [sh, -c, 'echo a==1; sleep 30']}\n")
    started = time.monotonic()
    found = _collect(job, _stack(tmp_path, monkeypatch))
    assert time.monotonic() - started < 10
    assert found.packages == {"a": "1"}  # what it printed before its deadline


# -- never in the way ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "failure",
    [EngineError("the Docker engine did not answer `docker exec` within 5 s"),
     DockerException(["docker"], 1, b"", b"boom"), OSError("cannot start docker")],
    ids=["engine-timeout", "docker-failed", "no-docker"],
)  # fmt: skip
def test_an_engine_that_fails_every_question_leaves_what_the_stack_knew(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, engine: Engine, failure: Exception
) -> None:
    engine.fail = failure
    job = _job(
        tmp_path, "versions: {app: {command: [x]}, hog: {log: x}}\ntests: {command: 'true'}\n"
    )
    found = _collect(job, _stack(tmp_path, monkeypatch))
    assert found.services["db"] == ServiceProvenance("postgres:15", PG_ID)
    assert found.services["app"] == ServiceProvenance("local/shop:pg-15", SHOP_ID)
    assert found.services["hog"].version == ""


def test_a_cancelled_run_asks_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, engine: Engine
) -> None:
    job = _job(
        tmp_path, "versions: {app: {command: [x]}}\ntests: {command: 'true', versions: [x]}\n"
    )
    job.cancel.set()
    found = _collect(job, _stack(tmp_path, monkeypatch))
    assert engine.calls == []
    assert found.services["db"] == ServiceProvenance("postgres:15", PG_ID)
    assert (found.python, found.packages) == ("", {})


# -- packages -----------------------------------------------------------------------------------


def test_packages_are_bounded_in_number_and_length() -> None:
    lines = [f"pkg{i}=={i}.0" for i in range(500)] + ["late==1"]
    found = parse_packages("\n".join(lines))
    assert len(found) == provenance.MAX_PACKAGES
    assert "late" not in found
    assert parse_packages("a==1\na==2\n") == {"a": "1"}  # the first one printed


@pytest.mark.parametrize(
    ("text", "packages"),
    [
        ("requests==2.32.3\n", {"requests": "2.32.3"}),
        ("left-pad 1.3.0\n", {"left-pad": "1.3.0"}),
        ("@scope/pkg 4.0.1\n", {"@scope/pkg": "4.0.1"}),
        ("Package Version\n------- -------\nx 1\n", {"x": "1"}),
        ("shop @ file:///src/shop\n", {}),
        ("==1.0\n", {}),
        ("a==\n", {}),
        ("just-a-word\n", {}),
        ("", {}),
    ],
    ids=["freeze", "two-columns", "scoped", "table-header", "direct-url", "no-name",
         "no-version", "one-word", "empty"],
)  # fmt: skip
def test_package_lines_are_name_and_version_and_nothing_else(
    text: str, packages: dict[str, str]
) -> None:
    assert parse_packages(text) == packages


@pytest.fixture(autouse=True)
def _no_threads_left() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    left = [t for t in set(threading.enumerate()) - before if t.name.startswith("stackmatrix-")]
    assert left == []
