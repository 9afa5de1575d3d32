"""`stackmatrix list` and `stackmatrix render` as a user runs them."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import yaml

from stackmatrix import __version__
from stackmatrix.cli import common as cli_common
from stackmatrix.cli.main import main

MATRIX = """\
name: shop
axes:
  postgres: ["13", "15"]
  redis: ["off", "on"]
exclude:
  - {postgres: "13", redis: "on"}
include:
  - {postgres: "15", redis: "on", experimental: true}
  - {postgres: "17", redis: "on", note: newest}
overlays:
  - compose:
      services:
        db: {image: "postgres:${{ matrix.postgres }}", ports: ["5432"]}
tests: {command: pytest}
profiles:
  small: {axes: {postgres: ["15"]}, include: []}
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "matrix.yaml").write_text(MATRIX, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_list_prints_an_aligned_table(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list"]) == 0
    assert capsys.readouterr().out == textwrap.dedent("""\
        VARIANT                postgres  redis  experimental  note
        postgres-13_redis-off  13        off    -             -
        postgres-15_redis-off  15        off    -             -
        postgres-15_redis-on   15        on     true          -
        postgres-17_redis-on   17        on     -             newest
        4 variants (1 experimental)
        """)


def test_list_json(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "--json", "-f", str(project / "matrix.yaml")]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data[2] == {
        "id": "postgres-15_redis-on",
        "values": {"postgres": "15", "redis": "on", "experimental": True},
        "experimental": True,
    }
    assert data[3] == {
        "id": "postgres-17_redis-on",
        "values": {"postgres": "17", "redis": "on", "note": "newest"},
        "experimental": False,
    }


def test_list_with_a_profile(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "--profile", "small", "--json"]) == 0
    assert [v["id"] for v in json.loads(capsys.readouterr().out)] == [
        "postgres-15_redis-off",
        "postgres-15_redis-on",
    ]


def test_render_to_stdout_and_to_a_file(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", "postgres-15_redis-on", "--run-id", "ci-7"]) == 0
    printed = capsys.readouterr().out
    db = yaml.safe_load(printed)["services"]["db"]
    assert db["image"] == "postgres:15"
    assert db["labels"] == {
        "io.stackmatrix.run": "ci-7",
        "io.stackmatrix.variant": "postgres-15_redis-on",
    }
    assert db["ports"] == [{"target": 5432, "host_ip": "127.0.0.1", "protocol": "tcp"}]
    assert main(["render", "postgres-15_redis-on", "--run-id", "ci-7", "-o", "out.yaml"]) == 0
    assert (project / "out.yaml").read_text(encoding="utf-8") == printed
    assert capsys.readouterr().out == ""


def test_render_default_run_id(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", "postgres-13_redis-off"]) == 0
    assert "io.stackmatrix.run: render" in capsys.readouterr().out


def test_unknown_variant_suggests_the_closest(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["render", "postgres-15_redis-of"]) == 2
    assert capsys.readouterr().err == (
        "stackmatrix: error: unknown variant 'postgres-15_redis-of'"
        " — did you mean 'postgres-15_redis-off'?\n"
    )


def test_spec_errors_are_printed_one_per_line(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "bad.yaml").write_text("axes: {v: [a, a]}\ntests: {commnd: x}\n", encoding="utf-8")
    assert main(["list", "-f", "bad.yaml"]) == 2
    assert capsys.readouterr().err == (
        "stackmatrix: error: bad.yaml:2:8: tests: missing required key 'command'\n"
        "stackmatrix: error: bad.yaml:2:9: tests.commnd: unknown key 'commnd'"
        " — did you mean 'command'?\n"
    )


def test_missing_matrix_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["list"]) == 2
    assert capsys.readouterr().err == "stackmatrix: error: matrix.yaml: file not found\n"


def test_unwritable_output_is_a_usage_error(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A folder that cannot be made: its parent is a file. (The private write reports it as a
    # file error, exit 3; a plain write as a usage error, exit 2.)
    target = project / "matrix.yaml" / "dir.yaml"
    assert main(["render", "postgres-13_redis-off", "-o", str(target)]) in (2, 3)
    err = capsys.readouterr().err
    assert err.startswith("stackmatrix: error: cannot write ")
    assert "Traceback" not in err


def test_interrupt_exits_130(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupted(*_: object, **__: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_common, "load_spec", interrupted)
    assert main(["list"]) == 130
    assert capsys.readouterr().err == "stackmatrix: interrupted\n"


def test_version_and_usage(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["--version"])
    assert caught.value.code == 0
    assert capsys.readouterr().out == f"stackmatrix {__version__}\n"
    assert main([]) == 2
    help_text = capsys.readouterr().err
    assert "list" in help_text
    assert "render" in help_text


def test_gitlab_matrix_writes_a_child_pipeline(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["gitlab-matrix", "--shards", "2", "--tag", "docker", "-o", "child.yml"]) == 0
    assert capsys.readouterr().err == "stackmatrix: wrote child.yml\n"
    pipeline = yaml.safe_load((project / "child.yml").read_text(encoding="utf-8"))
    assert [key for key in pipeline if key.startswith("stackmatrix")] == [
        "stackmatrix shard 1 of 2", "stackmatrix shard 2 of 2", "stackmatrix report",
    ]  # fmt: skip
    assert pipeline[".stackmatrix"]["tags"] == ["docker"]
    assert pipeline[".stackmatrix"]["before_script"] == [
        f"python3 -m pip install stackmatrix=={__version__}"
    ]


def test_gitlab_matrix_one_job_per_variant_of_a_profile(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["gitlab-matrix", "--profile", "small", "--install", "pip install ."]) == 0
    pipeline = yaml.safe_load(capsys.readouterr().out)
    runs = {key: job["script"] for key, job in pipeline.items() if key.startswith("stackmatrix ")}
    assert runs.pop("stackmatrix report")
    assert all("--profile small --only" in script[0] for script in runs.values())
    assert pipeline[".stackmatrix"]["before_script"] == ["pip install ."]


def test_gitlab_matrix_refuses_too_many_jobs_with_a_shards_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    matrix = "name: big\naxes:\n  a: [" + ", ".join(f'"{n}"' for n in range(300)) + "]\n"
    overlay = "overlays:\n  - compose: {services: {db: {image: 'postgres:16'}}}\n"
    (tmp_path / "matrix.yaml").write_text(matrix + overlay + "tests: {command: pytest}\n", "utf-8")
    monkeypatch.chdir(tmp_path)
    assert main(["gitlab-matrix"]) == 2
    err = capsys.readouterr().err
    assert "the matrix has 300 variants" in err
    assert "--shards N" in err
    assert "Traceback" not in err
    assert main(["gitlab-matrix", "--shards", "4", "-o", "child.yml"]) == 0
    assert (tmp_path / "child.yml").is_file()


def test_gitlab_matrix_unwritable_output_is_a_usage_error(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["gitlab-matrix", "-o", str(project / "matrix.yaml" / "child.yml")]) == 2
    assert "cannot write" in capsys.readouterr().err


def test_gitlab_matrix_s_report_job_fails_on_missing_results_unless_told(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def report_script(*extra: str) -> str:
        assert main(["gitlab-matrix", "--shards", "2", *extra]) == 0
        pipeline = yaml.safe_load(capsys.readouterr().out)
        return str(pipeline["stackmatrix report"]["script"][-1])

    base = 'stackmatrix report "$@" --out stackmatrix-report'
    assert report_script() == f"{base} --fail-on incomplete"
    assert report_script("--fail-on", "failure, incomplete") == (
        f"{base} --fail-on failure,incomplete"
    )
    assert report_script("--fail-on", "none") == base
    with pytest.raises(SystemExit) as exit_info:
        main(["gitlab-matrix", "--fail-on", "regression"])
    assert exit_info.value.code == 2
    assert "the report job has no baseline" in capsys.readouterr().err
