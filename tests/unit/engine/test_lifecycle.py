"""The engine-free parts of one variant's life: the environment its tests get, running the
test command on the host, and the verdict from its exit and its JUnit report."""

from __future__ import annotations

import os
import textwrap
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from stackmatrix.engine import lifecycle, suite
from stackmatrix.engine.job import Released, VariantJob, host_wide_names
from stackmatrix.engine.processes import ProcessOutcome
from stackmatrix.engine.services import ServiceState
from stackmatrix.engine.stack import Cancelled, Stack, StackFailure
from stackmatrix.engine.suite import judge as _judge
from stackmatrix.engine.suite import run_suite as _run_tests
from stackmatrix.errors import EngineError, StackmatrixError
from stackmatrix.matrix.expand import Variant, expand
from stackmatrix.results.journal import Provenance, ServiceProvenance, Status, exit_code_of
from stackmatrix.spec.load import load_spec
from stackmatrix.spec.models import Spec

RUN_ID = "20260314-092000-a1b2"
PORTS = {"db": {"5432": "127.0.0.1:32770", "514/udp": "127.0.0.1:32771"}}


def _spec(tmp_path: Path, tests: str) -> Spec:
    (tmp_path / "compose.yaml").write_text(
        'services:\n  db: {image: "postgres:${{ matrix.pg }}"}\n', encoding="utf-8"
    )
    (tmp_path / "matrix.yaml").write_text(
        "name: shop\ncompose: compose.yaml\n"
        'axes: {pg: ["15", "16 && echo pwned"], redis: ["on"]}\n'
        "secrets: [SHOP_DSN]\n" + textwrap.dedent(tests),
        encoding="utf-8",
    )
    return load_spec(tmp_path / "matrix.yaml")


def _job(spec: Spec, tmp_path: Path, index: int = 0) -> VariantJob:
    return VariantJob(
        spec=spec,
        variant=expand(spec)[index],
        run_id=RUN_ID,
        run_dir=tmp_path / "runs" / RUN_ID,
        base_env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
    )


def _stack(job: VariantJob) -> Stack:
    """A real Stack; a test command on the host never uses it (no engine is reached)."""
    return Stack(
        project=job.project,
        compose_file=job.directory / "compose.yaml",
        project_directory=job.spec.path.parent,
        services=["db"],
        cancel=job.cancel,
    )


_ENV_TESTS = """\
tests:
  command: ["pytest", "--junitxml=${{ junit }}"]
  env:
    DATABASE_URL: "postgresql://postgres:pw-${{ matrix.pg }}@${{ ports.db.5432 }}/postgres"
    DB_PASSWORD: hunter22
    SHOP_DSN: "dsn-${{ variant }}"
"""


# -- the tests' environment -------------------------------------------------------------------


def test_the_tests_get_the_variant_its_ports_and_its_values(tmp_path: Path) -> None:
    job = _job(_spec(tmp_path, _ENV_TESTS), tmp_path)
    context = {"ports": PORTS, "matrix": {"pg": "15", "redis": "on"}, "variant": "pg-15_redis-on"}
    env = suite.tests_environment(job, PORTS, "/tmp/junit.xml", context)
    assert env == {
        "STACKMATRIX_VARIANT": "pg-15_redis-on",
        "STACKMATRIX_RUN_ID": RUN_ID,
        "STACKMATRIX_PROJECT": job.project,
        "STACKMATRIX_JUNIT": "/tmp/junit.xml",
        "STACKMATRIX_DB_5432": "127.0.0.1:32770",
        "STACKMATRIX_DB_514_UDP": "127.0.0.1:32771",
        "STACKMATRIX_AXIS_PG": "15",
        "STACKMATRIX_AXIS_REDIS": "on",
        "DATABASE_URL": "postgresql://postgres:pw-15@127.0.0.1:32770/postgres",
        "DB_PASSWORD": "hunter22",
        "SHOP_DSN": "dsn-pg-15_redis-on",
    }


# -- running the tests on the host ------------------------------------------------------------


def test_the_test_command_runs_on_the_host_with_that_environment(tmp_path: Path) -> None:
    (tmp_path / "check.sh").write_text(
        'env | grep -E "^(STACKMATRIX_|DATABASE_URL|SHOP_DSN)" | sort\n'
        'echo \'<testsuite tests="0"/>\' > "$1"\n',
        encoding="utf-8",
    )
    spec = _spec(
        tmp_path,
        _ENV_TESTS.replace('"pytest", "--junitxml=${{ junit }}"', 'sh, check.sh, "${{ junit }}"'),
    )
    job = _job(spec, tmp_path)
    junit = job.directory / "junit.xml"
    secrets: list[str] = []
    outcome = _run_tests(job, _stack(job), PORTS, junit, secrets)
    assert outcome.exit_code == 0
    log = (job.directory / "tests.log").read_text(encoding="utf-8").splitlines()
    assert log[0] == f"$ sh check.sh {junit}"
    assert log[1:] == sorted(log[1:])
    assert "STACKMATRIX_DB_5432=127.0.0.1:32770" in log
    assert f"STACKMATRIX_JUNIT={junit}" in log
    assert "SHOP_DSN=dsn-pg-15_redis-on" in log  # (the log is redacted after, in collect)
    assert junit.read_text(encoding="utf-8") == '<testsuite tests="0"/>\n'
    # The secret values of the expanded environment are known, to be masked everywhere.
    assert {"hunter22", "dsn-pg-15_redis-on"} <= set(secrets)


def test_a_shell_command_gets_every_value_as_one_quoted_word(tmp_path: Path) -> None:
    spec = _spec(tmp_path, "tests:\n  shell: true\n  command: 'echo ${{ matrix.pg }} > seen.txt'\n")
    job = _job(spec, tmp_path, index=1)  # pg = "16 && echo pwned"
    outcome = _run_tests(job, _stack(job), PORTS, job.directory / "junit.xml", [])
    assert outcome.exit_code == 0
    # One word: the value is data, never shell code.
    assert (tmp_path / "seen.txt").read_text(encoding="utf-8") == "16 && echo pwned\n"


def test_a_reference_to_a_port_that_is_not_published_fails_the_stack(tmp_path: Path) -> None:
    job = _job(_spec(tmp_path, _ENV_TESTS), tmp_path)
    with pytest.raises(StackFailure) as failure:
        _run_tests(job, _stack(job), {"db": {}}, job.directory / "junit.xml", [])
    assert failure.value.reason == (
        "cannot prepare the test command: ${{ ports.db.5432 }}: service 'db' publishes no port "
        "5432; published: none"
    )


def test_tests_that_outlive_their_timeout_are_killed_and_fail(tmp_path: Path) -> None:
    spec = _spec(tmp_path, "tests:\n  command: [sleep, '30']\n  timeout: 0.3s\n")
    job = _job(spec, tmp_path)
    junit = job.directory / "junit.xml"
    outcome = _run_tests(job, _stack(job), PORTS, junit, [])
    assert outcome.timed_out
    assert outcome.duration < 5
    assert _judge(outcome, junit, job) == (
        Status.FAILED,
        "tests timed out after 0.3 s; their process group was killed",
    )
    assert "killed after the 0.3 s timeout" in (job.directory / "tests.log").read_text()


# -- the verdict ------------------------------------------------------------------------------


def _report(path: Path, *, failures: int = 0, errors: int = 0, passed: int = 1) -> Path:
    cases = (
        "<testcase name='ok'/>" * passed
        + "<testcase name='f'><failure message='x'/></testcase>" * failures
        + "<testcase name='e'><error message='y'/></testcase>" * errors
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"<testsuite name='t'>{cases}</testsuite>\n", encoding="utf-8")
    return path


@pytest.fixture
def job(tmp_path: Path) -> VariantJob:
    return _job(_spec(tmp_path, "tests:\n  command: [pytest]\n"), tmp_path)


def test_exit_0_with_a_clean_report_passes(job: VariantJob, tmp_path: Path) -> None:
    junit = _report(tmp_path / "junit.xml", passed=3)
    assert _judge(ProcessOutcome(0, 1.0), junit, job) == (Status.PASSED, "")


def test_a_failing_exit_names_the_code_and_the_counts(job: VariantJob, tmp_path: Path) -> None:
    junit = _report(tmp_path / "junit.xml", failures=2, errors=1)
    assert _judge(ProcessOutcome(1, 1.0), junit, job) == (
        Status.FAILED,
        "tests exited with code 1 (2 failed, 1 errors)",
    )


def test_a_failing_exit_without_a_report(job: VariantJob, tmp_path: Path) -> None:
    empty = tmp_path / "junit.xml"
    empty.write_bytes(b"")  # an empty file is no report
    for junit in (tmp_path / "missing.xml", empty):
        assert _judge(ProcessOutcome(4, 1.0), junit, job) == (
            Status.FAILED,
            "tests exited with code 4",
        )


def test_exit_0_with_failures_in_the_report_still_fails(job: VariantJob, tmp_path: Path) -> None:
    junit = _report(tmp_path / "junit.xml", failures=1)
    assert _judge(ProcessOutcome(0, 1.0), junit, job) == (
        Status.FAILED,
        "exit code 0 but the report has 1 failed, 0 errors",
    )


def test_a_command_that_cannot_start_is_an_error(job: VariantJob, tmp_path: Path) -> None:
    outcome = ProcessOutcome(None, 0.0, start_error="cannot start 'pytest': No such file")
    assert _judge(outcome, tmp_path / "junit.xml", job) == (
        Status.ERROR,
        "cannot start 'pytest': No such file",
    )


def test_tests_killed_by_a_cancelled_run_are_cancelled_not_failed(
    job: VariantJob, tmp_path: Path
) -> None:
    with pytest.raises(Cancelled):
        _judge(ProcessOutcome(-15, 1.0, cancelled=True), tmp_path / "junit.xml", job)


def test_a_cancelled_run_kills_the_tests(tmp_path: Path) -> None:
    spec = _spec(tmp_path, "tests:\n  command: [sleep, '30']\n")
    job = _job(spec, tmp_path)
    threading.Timer(0.2, job.cancel.set).start()
    outcome = _run_tests(job, _stack(job), PORTS, job.directory / "junit.xml", [])
    assert outcome.cancelled
    assert outcome.duration < 5
    assert "killed: the run was cancelled" in (job.directory / "tests.log").read_text()


def test_variant_values_reach_the_project_name(tmp_path: Path) -> None:
    spec = _spec(tmp_path, "tests:\n  command: [pytest]\n")
    job = _job(spec, tmp_path)
    assert job.variant == Variant("pg-15_redis-on", {"pg": "15", "redis": "on"})
    assert job.directory == tmp_path / "runs" / RUN_ID / "pg-15_redis-on"
    assert job.project.startswith("shop-")


# -- an engine that dies after the tests --------------------------------------------------------


class _DyingEngineStack:
    """A stack whose engine answers until the tests are done, then dies: logs and down fail."""

    def __init__(self, **_: object) -> None:
        self.client = None
        self.cancel = threading.Event()
        self.keep = False
        self.created = True
        self.services = ["db"]
        self.compose_file = Path("compose.yaml")
        self.downs = 0
        self.states = {"db": ServiceState("db", "c0ffee", "running", None, None, "", {})}
        self.images: dict[str, tuple[str, str]] = {}  # service -> (reference, image id)

    def __enter__(self) -> _DyingEngineStack:
        return self

    def __exit__(self, *_: object) -> None:
        if not self.keep:
            self.down()

    def container_ids(self) -> dict[str, str]:
        return {}

    def build(self, *_: object, **__: object) -> None: ...
    def up(self) -> None: ...
    def wait_until_healthy(self, _timeout: float) -> None: ...
    def wait_until_ready(self, *_: object) -> None: ...

    def ports(self) -> dict[str, dict[str, str]]:
        return {"db": {"5432": "127.0.0.1:32770"}}

    def refresh(self) -> dict[str, ServiceState]:
        raise EngineError("Cannot connect to the Docker daemon at unix:///var/run/docker.sock")

    def save_logs(self, *_: object, **__: object) -> dict[str, Path]:
        raise EngineError("Cannot connect to the Docker daemon at unix:///var/run/docker.sock")

    def down(self) -> None:
        self.downs += 1
        raise EngineError("docker compose down: the engine does not answer")


class _NoSampler:
    def __init__(self, *_: object, **__: object) -> None:
        self.samples: list[object] = []

    def start(self) -> None: ...
    def stop(self) -> None: ...


@pytest.mark.parametrize("failing", [False, True])
def test_a_variant_whose_engine_dies_after_its_tests_keeps_its_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: bool
) -> None:
    report = _report(tmp_path / "made.xml", failures=int(failing), passed=2)
    spec = _spec(
        tmp_path, f"tests:\n  command: [sh, -c, 'cp {report} \"$1\"', sh, '${{{{ junit }}}}']\n"
    )
    monkeypatch.setattr(lifecycle, "Stack", _DyingEngineStack)
    monkeypatch.setattr(lifecycle, "StatsSampler", _NoSampler)
    result = lifecycle.run_variant(_job(spec, tmp_path))
    assert result.status is (Status.FAILED if failing else Status.PASSED)
    assert result.reason == ("exit code 0 but the report has 1 failed, 0 errors" if failing else "")
    assert (result.tests.passed, result.tests.failed) == (2, int(failing))
    assert (
        tmp_path / "runs" / RUN_ID / result.id / "junit.xml"
    ).read_bytes() == report.read_bytes()
    assert result.teardown == (
        "collecting logs and stats failed: Cannot connect to the Docker daemon at"
        " unix:///var/run/docker.sock; teardown failed: docker compose down: the engine does"
        " not answer"
    )
    assert result.detail.startswith("teardown: collecting logs and stats failed")
    assert exit_code_of([result], interrupted=False) == 3  # a stack may be left: gc removes it


def test_the_first_cause_is_the_reason_not_the_teardown_error_after_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class _UpFails(_DyingEngineStack):
        def up(self) -> None:
            raise EngineError("docker compose up: the engine went away")

    spec = _spec(tmp_path, "tests: {command: [sh, -c, 'exit 0']}\n")
    monkeypatch.setattr(lifecycle, "Stack", _UpFails)
    monkeypatch.setattr(lifecycle, "StatsSampler", _NoSampler)
    result = lifecycle.run_variant(_job(spec, tmp_path))
    assert result.status is Status.ERROR
    assert result.reason == "docker compose up: the engine went away"
    assert "teardown failed: docker compose down: the engine does not answer" in result.teardown


# -- the order of a variant's end: collect, release, down ------------------------------------


class _Timeline:
    """What happened, in order, to a stack, its sampler and the variant's job."""

    def __init__(self) -> None:
        self.events: list[str] = []
        self.sampling = False


def _recording_stack(timeline: _Timeline) -> type[_DyingEngineStack]:
    class _Healthy(_DyingEngineStack):
        """A stack whose engine always answers; each call is put on the timeline."""

        def up(self) -> None:
            timeline.events.append(f"up (sampling: {timeline.sampling})")

        def save_logs(self, *_: object, **__: object) -> dict[str, Path]:
            timeline.events.append(f"logs (sampling: {timeline.sampling})")
            return {}

        def down(self) -> None:
            timeline.events.append(f"down (sampling: {timeline.sampling})")

    return _Healthy


def _recording_sampler(timeline: _Timeline) -> type[_NoSampler]:
    class _Sampler(_NoSampler):
        def start(self) -> None:
            timeline.sampling = True
            timeline.events.append("sampling starts")

        def stop(self) -> None:
            if timeline.sampling:
                timeline.events.append("sampling stops")
            timeline.sampling = False

    return _Sampler


def _no_provenance(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lifecycle, "service_provenance", lambda *_: Provenance())
    monkeypatch.setattr(lifecycle, "test_environment", lambda *args: args[-1])
    monkeypatch.setattr(lifecycle, "images_only", lambda *_: Provenance())


@pytest.mark.parametrize(("exit_code", "status"), [(0, Status.PASSED), (1, Status.FAILED)])
def test_the_slot_is_released_with_the_verdict_as_its_down_begins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exit_code: int, status: Status
) -> None:
    report = _report(tmp_path / "made.xml", failures=int(bool(exit_code)), passed=1)
    command = f"[sh, -c, 'cp {report} \"$1\"; exit {exit_code}', sh, '${{{{ junit }}}}']"
    spec = _spec(tmp_path, f"tests:\n  command: {command}\n")
    timeline = _Timeline()
    monkeypatch.setattr(lifecycle, "Stack", _recording_stack(timeline))
    monkeypatch.setattr(lifecycle, "StatsSampler", _recording_sampler(timeline))
    _no_provenance(monkeypatch)
    released: list[Released] = []

    def on_phase(_variant: str, phase: str) -> None:
        timeline.events.append(phase)

    def on_released(release: Released) -> None:
        timeline.events.append("released")
        released.append(release)

    job = replace(_job(spec, tmp_path), on_phase=on_phase, on_released=on_released)
    result = lifecycle.run_variant(job)

    assert result.status is status
    assert released == [Released(job.variant.id, status, exit_code)]
    # Sampled from before the containers exist until the logs are in; released as the down
    # phase begins, before the stack comes down.
    assert timeline.events == [
        "render",
        "build",
        "sampling starts",
        "up",
        "up (sampling: True)",
        "ready",
        "tests",
        "collect",
        "logs (sampling: True)",
        "sampling stops",
        "down",
        "released",
        "down (sampling: False)",
    ]


def test_a_variant_that_fails_before_its_stack_exists_is_never_released(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = _spec(tmp_path, "tests: {command: [sh, -c, 'exit 0']}\n")
    released: list[Released] = []
    job = replace(_job(spec, tmp_path), on_released=released.append)

    def broken(*_: object, **__: object) -> dict[str, object]:
        raise StackmatrixError("compose.yaml: cannot render")

    monkeypatch.setattr(lifecycle, "render", broken)
    result = lifecycle.run_variant(job)
    assert result.status is Status.ERROR
    assert result.reason == "compose.yaml: cannot render"
    assert released == []  # the scheduler frees its slot when its life ends


def test_a_stack_that_claims_a_host_port_keeps_its_slot_until_it_is_down(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = _spec(tmp_path, "tests: {command: [sh, -c, 'exit 0']}\n")
    (tmp_path / "compose.yaml").write_text(
        "services:\n  db: {image: 'postgres:${{ matrix.pg }}', ports: ['18777:5432']}\n",
        encoding="utf-8",
    )
    timeline = _Timeline()
    monkeypatch.setattr(lifecycle, "Stack", _recording_stack(timeline))
    monkeypatch.setattr(lifecycle, "StatsSampler", _recording_sampler(timeline))
    _no_provenance(monkeypatch)
    job = replace(
        _job(spec, tmp_path), on_released=lambda _release: timeline.events.append("released")
    )
    result = lifecycle.run_variant(job)
    assert result.status is Status.PASSED
    assert timeline.events[-2:] == ["down (sampling: False)", "released"]


@pytest.mark.parametrize(
    ("compose", "claims"),
    [
        ({"services": {"db": {"ports": [{"target": 5432, "host_ip": "127.0.0.1"}]}}}, ()),
        (
            {
                "services": {
                    "db": {
                        "ports": [{"target": 7000, "published": "18777", "host_ip": "127.0.0.1"}]
                    }
                }
            },
            ("service 'db': host port 127.0.0.1:18777",),
        ),
        (
            {"services": {"web": {"ports": ["[::1]:8080:80", "9000"]}}},
            ("service 'web': host port ::1:8080",),
        ),
        (
            {"services": {"db": {"container_name": "shop-db"}}},
            ("service 'db': container_name shop-db",),
        ),
        (
            {
                "services": {},
                "volumes": {"data": {"external": True, "name": "shop-data"}},
                "networks": {"edge": {"external": True}, "own": {}},
            },
            ("external volume 'shop-data'", "external network 'edge'"),
        ),
    ],
)
def test_what_a_stack_claims_on_the_whole_host(
    compose: dict[str, object], claims: tuple[str, ...]
) -> None:
    assert host_wide_names(compose) == claims


class _Broken(Exception):
    pass


def test_a_release_that_raises_does_not_stop_the_down(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = _spec(tmp_path, "tests: {command: [sh, -c, 'exit 0']}\n")
    timeline = _Timeline()
    monkeypatch.setattr(lifecycle, "Stack", _recording_stack(timeline))
    monkeypatch.setattr(lifecycle, "StatsSampler", _recording_sampler(timeline))
    _no_provenance(monkeypatch)

    def refuses(_release: Released) -> None:
        raise _Broken("the scheduler is gone")

    result = lifecycle.run_variant(replace(_job(spec, tmp_path), on_released=refuses))
    assert result.status is Status.PASSED
    assert timeline.events[-1] == "down (sampling: False)"
    assert "down" in result.phases


@pytest.mark.parametrize("where", ["links", "collect phase"])
def test_the_sampling_ends_when_the_teardown_fails_early(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    spec = _spec(tmp_path, "tests: {command: [sh, -c, 'exit 0']}\n")
    timeline = _Timeline()
    monkeypatch.setattr(lifecycle, "Stack", _recording_stack(timeline))
    monkeypatch.setattr(lifecycle, "StatsSampler", _recording_sampler(timeline))
    _no_provenance(monkeypatch)

    def denied(_folder: Path) -> list[str]:
        raise PermissionError(13, "Permission denied", str(_folder))

    def on_phase(_variant: str, phase: str) -> None:
        if phase == "collect" and where == "collect phase":
            raise _Broken("the console is gone")

    monkeypatch.setattr(lifecycle, "remove_links", denied if where == "links" else lambda _: [])
    job = replace(_job(spec, tmp_path), on_phase=on_phase)
    if where == "links":
        result = lifecycle.run_variant(job)
        assert result.status is Status.PASSED
        assert result.teardown.startswith("collecting logs and stats failed: [Errno 13]")
    else:
        with pytest.raises(_Broken):
            lifecycle.run_variant(job)
    assert not timeline.sampling
    assert "sampling stops" in timeline.events


def test_the_tests_start_while_the_provenance_is_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = _spec(tmp_path, "tests: {command: [sh, -c, 'exit 0']}\n")
    timeline = _Timeline()
    monkeypatch.setattr(lifecycle, "Stack", _recording_stack(timeline))
    monkeypatch.setattr(lifecycle, "StatsSampler", _recording_sampler(timeline))
    tests_began = threading.Event()
    asked: list[str] = []

    def services(*_: object) -> Provenance:
        assert tests_began.wait(10), "the tests waited for the provenance"
        asked.append("services")
        return Provenance(python="services")

    def environment(*args: object) -> Provenance:
        asked.append("environment")
        found = args[-1]
        assert isinstance(found, Provenance)
        return replace(found, python="3.12.1")

    def on_phase(_variant: str, phase: str) -> None:
        if phase == "tests":
            tests_began.set()

    monkeypatch.setattr(lifecycle, "service_provenance", services)
    monkeypatch.setattr(lifecycle, "test_environment", environment)
    monkeypatch.setattr(lifecycle, "images_only", lambda *_: Provenance(python="images"))
    result = lifecycle.run_variant(replace(_job(spec, tmp_path), on_phase=on_phase))
    assert result.status is Status.PASSED
    assert asked == ["services", "environment"]
    assert result.provenance.python == "3.12.1"
    assert not [t for t in threading.enumerate() if t.name == "stackmatrix-provenance"]


def test_a_stack_that_never_got_ready_still_names_its_images(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class _UpFails(_DyingEngineStack):
        def up(self) -> None:
            raise StackFailure("service 'db' exited with code 1")

        def down(self) -> None: ...

    spec = _spec(tmp_path, "tests: {command: [sh, -c, 'exit 0']}\n")
    monkeypatch.setattr(lifecycle, "Stack", _UpFails)
    monkeypatch.setattr(lifecycle, "StatsSampler", _NoSampler)
    images = Provenance(python="only the images")
    monkeypatch.setattr(lifecycle, "images_only", lambda *_: images)
    result = lifecycle.run_variant(_job(spec, tmp_path))
    assert result.status is Status.ERROR
    assert result.provenance == images


def test_a_stack_that_never_got_ready_names_the_image_its_rendered_compose_gives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class _UpFails(_DyingEngineStack):
        def __init__(self, **kwargs: object) -> None:
            super().__init__(**kwargs)
            self.states = {}  # no container was made
            self.created = False

        def up(self) -> None:
            raise StackFailure("service 'db' exited with code 1")

        def down(self) -> None: ...

    spec = _spec(tmp_path, "tests: {command: [sh, -c, 'exit 0']}\n")
    monkeypatch.setattr(lifecycle, "Stack", _UpFails)
    monkeypatch.setattr(lifecycle, "StatsSampler", _NoSampler)
    result = lifecycle.run_variant(_job(spec, tmp_path))
    assert result.status is Status.ERROR
    assert result.provenance == Provenance(services={"db": ServiceProvenance(image="postgres:15")})
