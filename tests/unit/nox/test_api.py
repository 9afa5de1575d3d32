"""stackmatrix.nox without Docker: the sessions a noxfile gets, and the report's verdict."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import nox.registry
import pytest
import yaml

from stackmatrix.nox import RUN_ID_ENV, matrix_sessions
from stackmatrix.results.files import write_json_atomic
from stackmatrix.results.journal import Status, TestCounts, VariantResult

MATRIX: dict[str, Any] = {
    "name": "shop",
    "axes": {"postgres": ["13", "15"], "redis": ["off", "on"]},
    "exclude": [{"postgres": "13", "redis": "on"}],
    "include": [{"postgres": "17", "redis": "on", "experimental": True}],
    "overlays": [{"when": {}, "compose": {"services": {"db": {"image": "debian:bookworm-slim"}}}}],
    "tests": {"command": ["python", "check.py"]},
}
IDS = [
    "postgres-13_redis-off",
    "postgres-15_redis-off",
    "postgres-15_redis-on",
    "postgres-17_redis-on",
]


@pytest.fixture(autouse=True)
def empty_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test registers into an empty nox registry and leaves the real one untouched."""
    monkeypatch.setattr(nox.registry, "_REGISTRY", {})
    monkeypatch.setenv(RUN_ID_ENV, "placeholder")  # recorded, so the variable is removed after
    monkeypatch.delenv(RUN_ID_ENV)


def write_matrix(folder: Path, data: dict[str, Any] | None = None) -> Path:
    path = folder / "matrix.yaml"
    path.write_text(yaml.safe_dump(data or MATRIX, sort_keys=False), encoding="utf-8")
    return path


def write_noxfile(folder: Path, call: str = 'matrix_sessions("matrix.yaml")') -> Path:
    noxfile = folder / "noxfile.py"
    noxfile.write_text(
        "from stackmatrix.nox import matrix_sessions\n" + call + "\n", encoding="utf-8"
    )
    return noxfile


def run_nox(
    folder: Path, *args: str, run_id: str | None = None
) -> subprocess.CompletedProcess[str]:
    """`nox ARGS` in *folder*, as a user would type it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STACKMATRIX_")}
    env |= {"NO_COLOR": "1", "GITHUB_ACTIONS": "", "GITHUB_STEP_SUMMARY": ""}
    if run_id is not None:
        env[RUN_ID_ENV] = run_id
    return subprocess.run(
        [sys.executable, "-m", "nox", "-f", str(folder / "noxfile.py"), *args],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


# -- registration ------------------------------------------------------------------------------


def test_one_session_per_variant_and_a_report_that_requires_them(tmp_path: Path) -> None:
    names = matrix_sessions(write_matrix(tmp_path), out=tmp_path / "out")

    variant_names = [f"matrix-{vid}" for vid in IDS]
    assert names == [*variant_names, "matrix"]
    registry = nox.registry.get()
    assert list(registry) == names
    for name in variant_names:
        assert registry[name].allow_parallel is True
        assert registry[name].venv_backend is None
        assert registry[name].python is None
    report = registry["matrix"]
    assert report.requires == variant_names
    assert report.venv_backend == "none"
    assert report.allow_parallel is True


def test_tags_select_by_axis_value_and_mark_experimental_variants(tmp_path: Path) -> None:
    matrix_sessions(write_matrix(tmp_path), out=tmp_path / "out")

    tags = {name: func.tags for name, func in nox.registry.get().items()}
    assert tags == {
        "matrix-postgres-13_redis-off": ["matrix", "postgres-13", "redis-off"],
        "matrix-postgres-15_redis-off": ["matrix", "postgres-15", "redis-off"],
        "matrix-postgres-15_redis-on": ["matrix", "postgres-15", "redis-on"],
        "matrix-postgres-17_redis-on": ["matrix", "postgres-17", "redis-on", "experimental"],
        "matrix": ["matrix"],
    }


def test_options_reach_the_sessions(tmp_path: Path) -> None:
    names = matrix_sessions(
        write_matrix(tmp_path),
        report="compat",
        python="3.11",
        venv_backend="venv",
        default=False,
        out=tmp_path / "out",
    )

    registry = nox.registry.get()
    assert names[-1] == "compat"
    assert names[0] == "compat-postgres-13_redis-off"
    assert registry[names[0]].python == "3.11"
    assert registry[names[0]].venv_backend == "venv"
    assert registry[names[0]].tags[0] == "compat"
    assert not any(registry[name].default for name in names)


def test_a_profile_changes_the_sessions(tmp_path: Path) -> None:
    data = {**MATRIX, "profiles": {"nightly": {"axes": {"postgres": ["13", "15", "17"]}}}}
    path = write_matrix(tmp_path, data)

    names = matrix_sessions(path, profile="nightly", out=tmp_path / "out")

    assert "matrix-postgres-17_redis-off" in names
    assert "profile nightly" in (nox.registry.get()["matrix"].__doc__ or "")


def test_the_run_id_is_made_once_and_shared_through_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    matrix_sessions(write_matrix(tmp_path), out=tmp_path / "out")

    run_id = os.environ[RUN_ID_ENV]
    assert re.fullmatch(r"\d{8}-\d{6}-[0-9a-f]{16}", run_id)
    # A second matrix in the same noxfile (or a parallel worker) keeps the id it finds.
    second = tmp_path / "second"
    second.mkdir()
    matrix_sessions(write_matrix(second), report="other", out=second / "out")
    assert os.environ[RUN_ID_ENV] == run_id
    monkeypatch.setenv(RUN_ID_ENV, "ci-1234")
    monkeypatch.setattr(nox.registry, "_REGISTRY", {})
    matrix_sessions(write_matrix(tmp_path), out=tmp_path / "out")
    assert os.environ[RUN_ID_ENV] == "ci-1234"


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"python": ["3.11", "3.12"]}, TypeError, "one interpreter"),
        ({"install": "-e ."}, TypeError, "list of arguments"),
        ({"report": "Matrix!"}, ValueError, "must match"),
    ],
)
def test_misuse_is_refused_at_once(
    tmp_path: Path, kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        matrix_sessions(write_matrix(tmp_path), out=tmp_path / "out", **kwargs)
    assert nox.registry.get() == {}


def test_two_matrices_need_their_own_names_and_output_folders(tmp_path: Path) -> None:
    path = write_matrix(tmp_path)
    matrix_sessions(path, out=tmp_path / "out")

    with pytest.raises(ValueError, match="already used by the matrix session"):
        matrix_sessions(path, report="other", out=tmp_path / "out")
    with pytest.raises(ValueError, match="already registered: matrix"):
        matrix_sessions(path, out=tmp_path / "elsewhere")


# -- what nox shows ----------------------------------------------------------------------------


def test_nox_lists_the_variants_and_selects_them_by_tag(tmp_path: Path) -> None:
    write_matrix(tmp_path)
    write_noxfile(tmp_path)

    listing = run_nox(tmp_path, "-l", "-t", "postgres-15")

    assert listing.returncode == 0, listing.stderr
    selected = re.findall(r"^\* (\S+)", listing.stdout, re.MULTILINE)
    skipped = re.findall(r"^- (\S+)", listing.stdout, re.MULTILINE)
    assert selected == ["matrix-postgres-15_redis-off", "matrix-postgres-15_redis-on"]
    assert skipped == ["matrix-postgres-13_redis-off", "matrix-postgres-17_redis-on", "matrix"]
    assert "postgres=17, redis=on (experimental: may fail)" in listing.stdout
    assert not (tmp_path / ".stackmatrix").exists()  # listing creates nothing


def test_a_broken_matrix_leaves_one_session_that_shows_the_problems(tmp_path: Path) -> None:
    (tmp_path / "matrix.yaml").write_text("name: shop\naxes: {postgres: [13]}\ntest: {}\n")
    write_noxfile(tmp_path)

    listing = run_nox(tmp_path, "-l")
    run = run_nox(tmp_path, "-s", "matrix")

    assert listing.returncode == 0, listing.stderr
    assert "* matrix [matrix] -> matrix.yaml has errors" in listing.stdout
    assert run.returncode == 1
    assert re.search(r"matrix\.yaml:3:1: .*'test'.*did you mean 'tests'", run.stderr), run.stderr
    assert "Traceback" not in run.stderr


def test_a_bad_run_id_in_the_environment_is_reported_by_the_session(tmp_path: Path) -> None:
    write_matrix(tmp_path)
    write_noxfile(tmp_path)

    run = run_nox(tmp_path, "-s", "matrix", run_id="Not Valid")

    assert run.returncode == 1
    assert f"{RUN_ID_ENV}='Not Valid': a run id must match" in run.stderr


# -- the report session over recorded results --------------------------------------------------

JUNIT = (
    '<?xml version="1.0" encoding="utf-8"?>\n<testsuite name="check" tests="1" failures="{f}">'
    '<testcase classname="check" name="test_reply">{body}</testcase></testsuite>\n'
)


def record(run_dir: Path, variant_id: str, status: Status, *, experimental: bool = False) -> None:
    """What a variant session leaves in the run directory."""
    failed = status in (Status.FAILED, Status.EXPERIMENTAL_FAILED)
    folder = run_dir / variant_id
    folder.mkdir(parents=True)
    body = '<failure message="expected a:hi, got b:hi"/>' if failed else ""
    (folder / "junit.xml").write_text(JUNIT.format(f=int(failed), body=body), encoding="utf-8")
    postgres, redis = (part.split("-")[1] for part in variant_id.split("_"))
    result = VariantResult(
        id=variant_id,
        values={"postgres": postgres, "redis": redis},
        status=status,
        experimental=experimental,
        reason="tests exited with code 1 (1 failed, 0 errors)" if failed else "",
        started_at=1_800_000_000.0,
        finished_at=1_800_000_005.0,
        tests=TestCounts(total=1, passed=int(not failed), failed=int(failed)),
        junit=f"{variant_id}/junit.xml",
    )
    write_json_atomic(folder / "result.json", result.to_dict())


def recorded_project(tmp_path: Path, statuses: dict[str, Status]) -> Path:
    write_matrix(tmp_path)
    write_noxfile(tmp_path)
    run_dir = tmp_path / ".stackmatrix" / "runs" / "r1"
    for variant_id, status in statuses.items():
        record(run_dir, variant_id, status, experimental=variant_id == IDS[3])
    return run_dir


def test_the_report_merges_every_variant_and_passes_when_required_ones_passed(
    tmp_path: Path,
) -> None:
    statuses = dict.fromkeys(IDS[:3], Status.PASSED) | {IDS[3]: Status.EXPERIMENTAL_FAILED}
    run_dir = recorded_project(tmp_path, statuses)

    done = run_nox(tmp_path, "--no-dependencies", "-s", "matrix", run_id="r1")

    assert done.returncode == 0, done.stdout + done.stderr
    assert "shop: 4 variants" in done.stdout
    journal = json.loads((run_dir / "run.json").read_text())
    assert [v["id"] for v in journal["variants"]] == IDS
    assert journal["exit_code"] == 0
    assert journal["finished_at"] is not None
    assert journal["jobs"] == 4  # the four sessions ran over the same five seconds
    summary = (run_dir / "summary.md").read_text()
    assert all(f"`{vid}`" in summary for vid in IDS)
    merged = (run_dir / "junit.xml").read_text()
    assert all(f'value="{vid}"' in merged for vid in IDS)
    assert (run_dir / "report.html").is_file()


def test_the_report_fails_when_a_required_variant_failed(tmp_path: Path) -> None:
    statuses = dict.fromkeys(IDS, Status.PASSED) | {IDS[1]: Status.FAILED}
    run_dir = recorded_project(tmp_path, statuses)

    done = run_nox(tmp_path, "--no-dependencies", "-s", "matrix", run_id="r1")

    assert done.returncode == 1
    assert "1 of 4 variants did not pass (exit code 1)" in done.stderr
    assert re.search(r"postgres-15_redis-off\s+failed", done.stdout)
    assert json.loads((run_dir / "run.json").read_text())["exit_code"] == 1


def test_a_variant_that_did_not_run_counts_against_the_run(tmp_path: Path) -> None:
    run_dir = recorded_project(tmp_path, dict.fromkeys(IDS[:2], Status.PASSED))

    done = run_nox(tmp_path, "--no-dependencies", "-s", "matrix", run_id="r1")

    assert done.returncode == 1
    variants = {v["id"]: v for v in json.loads((run_dir / "run.json").read_text())["variants"]}
    assert variants[IDS[2]]["status"] == "cancelled"
    assert variants[IDS[2]]["reason"].startswith("did not run")
    # The experimental one may be missing without failing the run, but it is still shown.
    assert variants[IDS[3]]["status"] == "experimental-failed"
    assert "did not run" in (run_dir / "summary.md").read_text()


DESIGN_MATRIX = {
    **MATRIX,
    "axes": {"postgres": ["13", "15", "17"], "redis": ["off", "on"]},
    "include": [{"postgres": "17", "redis": "on", "experimental": True}],
}


def test_the_documented_noxfile_lists_what_the_docs_show(tmp_path: Path) -> None:
    docs = (Path(__file__).parents[3] / "docs" / "nox.md").read_text(encoding="utf-8")
    noxfile = re.search(r"## A complete noxfile\n\n```python\n(.*?)```", docs, re.DOTALL)
    listing = re.search(r"`nox -l` shows:\n\n```\n(.*?)```", docs, re.DOTALL)
    assert noxfile
    assert listing
    (tmp_path / "noxfile.py").write_text(noxfile.group(1), encoding="utf-8")
    write_matrix(tmp_path, DESIGN_MATRIX)

    shown = run_nox(tmp_path, "-l")

    assert shown.returncode == 0, shown.stderr
    lines = [line for line in shown.stdout.splitlines() if line[:2] in {"* ", "- "}]
    assert lines == listing.group(1).splitlines()
