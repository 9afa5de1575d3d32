"""Task runner for stackmatrix itself: `nox -l` lists what exists.

The sessions run in the project's virtualenv, which `scripts/bootstrap.sh` creates and keeps
up to date (it also makes sure a Docker engine, Compose v2 and the base images exist).
`scripts/nox` does both: bootstrap, then nox.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from xml.etree import ElementTree

import nox

from stackmatrix.nox import matrix_sessions

ROOT = Path(__file__).parent
# Sessions run the tools of the interpreter nox runs in (the project venv), activated or not.
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
nox.options.default_venv_backend = "none"
nox.options.sessions = ["lint", "typecheck", "tests"]
LOCK = ROOT / "requirements" / "dev.lock"
# How the lock is made; `nox -s lock` runs it (with --upgrade) and the bootstrap installs it.
LOCK_COMMAND = (
    "uv", "pip", "compile", "pyproject.toml", "--extra", "dev", "--generate-hashes",
    "--universal", "--python-version", "3.11", "--quiet", "-o", "requirements/dev.lock",
)  # fmt: skip
nox.options.error_on_missing_interpreters = True
PYTEST_NO_TESTS = 5


def _require_project_venv(session: nox.Session) -> None:
    """Fail with a hint when the tools are missing (bootstrap was not run)."""
    if shutil.which("pytest") is None or shutil.which("stackmatrix") is None:
        session.error(
            "the project virtualenv is missing: run scripts/bootstrap.sh (or scripts/nox)"
        )


def _pytest(session: nox.Session, *args: str, coverage: bool = False) -> None:
    """Run pytest; exit code 5 (nothing collected) is reported as the failure it is here."""
    report = ROOT / ".nox" / f"pytest-{session.name}.xml"
    report.parent.mkdir(exist_ok=True)
    report.unlink(missing_ok=True)
    runner = ["-m", "coverage", "run", "-m", "pytest"] if coverage else ["-m", "pytest"]
    session.run(
        "python", *runner, *args, f"--junitxml={report}", *session.posargs,
        success_codes=[0, PYTEST_NO_TESTS],
    )  # fmt: skip
    suites = ElementTree.parse(report).iter("testsuite")  # noqa: S314 - pytest's own report
    ran = sum(int(suite.get("tests", "0")) for suite in suites)
    if ran == 0:
        session.error("pytest collected no tests (exit code 5)")


@nox.session
def tests(session: nox.Session) -> None:
    """Unit, integration and browser tests, with coverage (the floor is in pyproject.toml)."""
    _require_project_venv(session)
    data = ROOT / ".nox" / "coverage"
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir(parents=True)
    _pytest(session, "tests", coverage=True)
    session.run("python", "-m", "coverage", "combine", "--quiet")
    # Selecting tests (-k, a path) measures only part of the code: the floor is for the whole.
    floor = ["--fail-under=0"] if session.posargs else []
    session.run("python", "-m", "coverage", "report", *floor)
    if session.posargs:
        session.log("coverage floor not enforced: only some tests were selected")


@nox.session
def unit(session: nox.Session) -> None:
    """Unit tests only: pure stages, no Docker."""
    _require_project_venv(session)
    _pytest(session, "tests/unit")


@nox.session
def integration(session: nox.Session) -> None:
    """Integration tests only: real engine, real containers."""
    _require_project_venv(session)
    _pytest(session, "tests/integration")


def _unit_tests_with(session: nox.Session, resolution: str) -> None:
    """Unit tests in a new venv whose runtime dependencies are resolved by ``resolution``."""
    session.install("--resolution", resolution, "--upgrade", "-e", ".[test]")
    session.run("python", "-c", _VERSIONS_SCRIPT)
    _pytest(session, "tests/unit")


# Which versions a bounds session really got, printed before its tests.
_VERSIONS_SCRIPT = (
    "import importlib.metadata as m;"
    "print('runtime dependencies:', ', '.join(f'{d}=={m.version(d)}' for d in"
    " ('nox', 'python-on-whales', 'PyYAML', 'junitparser', 'pydantic', 'defusedxml')))"
)


@nox.session(name="tests-oldest", venv_backend="uv")
def tests_oldest(session: nox.Session) -> None:
    """Unit tests on the lowest versions the runtime dependencies' bounds allow."""
    _unit_tests_with(session, "lowest-direct")


@nox.session(name="tests-latest", venv_backend="uv")
def tests_latest(session: nox.Session) -> None:
    """Unit tests on the newest versions the runtime dependencies' bounds allow."""
    _unit_tests_with(session, "highest")


@nox.session
def lock(session: nox.Session) -> None:
    """Refresh requirements/dev.lock to the newest versions pyproject.toml allows.

    ``nox -s lock -- --upgrade-package NAME`` moves one package only.
    """
    _require_project_venv(session)
    session.run(*LOCK_COMMAND, *(session.posargs or ["--upgrade"]))
    session.log("locked; run scripts/bootstrap.sh to install it, then the tests before committing")


@nox.session
def build(session: nox.Session) -> None:
    """Build the sdist and wheel, check them with twine, and try the wheel from outside the repo."""
    _require_project_venv(session)
    dist = ROOT / "dist"
    shutil.rmtree(dist, ignore_errors=True)
    # The locked hatchling of this venv builds it: no download, the same backend every time.
    session.run("uv", "build", "--quiet", "--no-build-isolation", "--python", sys.executable,
                "--out-dir", str(dist), str(ROOT))  # fmt: skip
    built = sorted(str(path) for pattern in ("*.whl", "*.tar.gz") for path in dist.glob(pattern))
    session.run("twine", "check", "--strict", *built)
    wheel = next(path for path in built if path.endswith(".whl"))
    with tempfile.TemporaryDirectory(prefix="stackmatrix-wheel-") as scratch:
        venv = Path(scratch) / "venv"
        session.run("uv", "venv", "--quiet", "--python", sys.executable, str(venv))
        env = {"VIRTUAL_ENV": str(venv)}
        session.run("uv", "pip", "install", "--quiet", wheel, env=env)
        tool = str(venv / "bin" / "stackmatrix")
        with session.chdir(scratch):
            session.run(tool, "--version")
            session.run(tool, "--help", silent=True)
            session.run(tool, "list", "-f", str(ROOT / "matrix.yaml"))
            typed = venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}"
            if not any(typed.glob("site-packages/stackmatrix/py.typed")):
                session.error("the wheel has no stackmatrix/py.typed")
    session.log(f"built and checked: {', '.join(Path(path).name for path in built)}")


@nox.session
def lint(session: nox.Session) -> None:
    """Ruff lint and format check, and the import contract of the package's layers."""
    _require_project_venv(session)
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("lint-imports", "--no-cache")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict over src, tests and this noxfile."""
    _require_project_venv(session)
    session.run("mypy")


@nox.session
def schema(session: nox.Session) -> None:
    """Regenerate src/stackmatrix/matrix.schema.json from the spec model."""
    _require_project_venv(session)
    session.run("python", "-m", "stackmatrix.spec.schema", "--write-schema")


@nox.session
def demo(session: nox.Session) -> None:
    """Run the example matrix (matrix.yaml) end to end and print where the report is."""
    _require_project_venv(session)
    session.run("stackmatrix", "run", "-f", str(ROOT / "matrix.yaml"), *session.posargs)


# The same example matrix through the nox API: `nox -j 3 -s example` runs every variant as
# its own session side by side, then merges; `nox -t postgres-17` selects by axis value.
matrix_sessions(ROOT / "matrix.yaml", report="example", venv_backend="none")


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks: writes bench/results.json and bench/README.md."""
    _require_project_venv(session)
    session.run("python", str(ROOT / "bench" / "run.py"), *session.posargs)
    # Images from a real local registry: the prepare stage against a per-variant pull script.
    session.run("python", str(ROOT / "bench" / "bench_pull.py"))
    # A service flooding its log: peak RSS of the collector and bytes kept on disk (200 MiB
    # here; `python bench/bench_logs.py` alone writes the full 1.5 GB, about 15 minutes).
    logs = ROOT / "bench" / "logs.json"
    session.run("python", str(ROOT / "bench" / "bench_logs.py"), "--mib", "200", "--out", str(logs))


# `nox -s realworld`: two third-party test suites through stackmatrix, fetched from PyPI
# sdists (never vendored). Each suite: its sdist, what its tests need, what `--quick` selects.
REALWORLD = ROOT / ".nox" / "realworld"
REALWORLD_SUITES: dict[str, dict[str, tuple[str, ...]]] = {
    "sqlalchemy": {
        "sdist": ("sqlalchemy==2.1.9",),
        # SQLAlchemy's dependency group tests-postgresql, less pg8000 (not in the matrix).
        "requirements": ("pytest>=7,<10", "psycopg2-binary", "psycopg[binary]>=3.0.7"),
        "quick": ("-k", "test_reflection or test_on_conflict"),
    },
    "redis-py": {
        "sdist": ("redis==8.1.0",),
        # The suite's dev_requirements.txt, less its linters and coverage tools.
        "requirements": (
            "pytest",
            "pytest-asyncio>=0.24.0",
            "pytest-timeout",
            "packaging>=20.4",
            "ujson>=4.2.0",
            "numpy>=1.24.0",
            "redis-entraid==1.2.1",
            "pybreaker>=1.4.0",
            "aiohttp>=3.9.0",
            "xxhash==3.6.0",
            "coverage<7.11.1",
            "opentelemetry-api>=1.30.0",
            "opentelemetry-sdk>=1.30.0",
            "opentelemetry-exporter-otlp-proto-http>=1.30.0",
            "click",
            "invoke",
        ),
        "quick": ("-k", "lcs or test_ping or test_hello or hrandfield or test_getex"),
    },
}
# Tests that failed is what these suites are for (the versions differ): exit 1 is a result.
# A wrong spec (2) or a failed stack or engine (3) fails the session.
STACKMATRIX_TESTS_FAILED = 1


def _realworld_venv(session: nox.Session, suite: str, source: Path) -> Path:
    """A virtualenv with the suite's test requirements and the suite's project installed."""
    venv = REALWORLD / "venvs" / suite
    if not (venv / "bin" / "python").exists():
        session.run("uv", "venv", "--quiet", "--python", sys.executable, str(venv))
    env = {"VIRTUAL_ENV": str(venv), "DISABLE_SQLALCHEMY_CEXT": "1"}
    requirements = REALWORLD_SUITES[suite]["requirements"]
    session.run("uv", "pip", "install", "--quiet", *requirements, str(source), env=env)
    return venv


@nox.session
def realworld(session: nox.Session) -> None:
    """Opt-in: SQLAlchemy's and redis-py's own test suites through stackmatrix.

    ``nox -s realworld -- redis-py`` runs one suite; ``--quick`` only a few of its tests;
    other arguments go to ``stackmatrix run`` (``--only postgres=13``), and those after a
    second ``--`` to the suite's pytest. Reports: .nox/realworld/out/<suite>/runs/latest/.
    """
    _require_project_venv(session)
    args = list(session.posargs)
    test_args: list[str] = []
    if "--" in args:
        test_args = args[args.index("--") + 1 :]
        args = args[: args.index("--")]
    suites = [arg for arg in args if arg in REALWORLD_SUITES] or list(REALWORLD_SUITES)
    quick = "--quick" in args
    run_args = [arg for arg in args if arg not in REALWORLD_SUITES and arg != "--quick"]
    outcomes: list[str] = []
    for suite in suites:
        (source,) = (
            Path(line)
            for line in session.run(
                "python", str(ROOT / "examples" / "realworld" / "fetch.py"),
                *REALWORLD_SUITES[suite]["sdist"], "--into", str(REALWORLD / "src"),
                silent=True,
            ).splitlines()  # type: ignore[union-attr]  # silent=True returns the output
        )  # fmt: skip
        venv = _realworld_venv(session, suite, source)
        selected = [*(REALWORLD_SUITES[suite]["quick"] if quick else ()), *test_args]
        started = time.monotonic()
        matrix = ROOT / "examples" / "realworld" / suite / "matrix.yaml"
        session.run(
            "stackmatrix", "run", "-f", str(matrix),
            "--out", str(REALWORLD / "out" / suite), *run_args,
            *(["--", *selected] if selected else []),
            env={"PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}",
                 "VIRTUAL_ENV": str(venv)},
            success_codes=[0, STACKMATRIX_TESTS_FAILED],
        )  # fmt: skip
        elapsed = time.monotonic() - started
        # session.run says only that the exit code was a success code; run.json has it.
        latest = REALWORLD / "out" / suite / "runs" / "latest"
        code = json.loads((latest / "run.json").read_text()).get("exit_code")
        verdict = "passed" if code == 0 else f"tests failed (exit {code})"
        outcomes.append(f"{suite}: {verdict} in {elapsed:.0f} s, {latest / 'report.html'}")
    for line in outcomes:
        session.log(line)


if __name__ == "__main__":
    sys.exit("run this file with nox")
