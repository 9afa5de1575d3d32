"""Loading valid matrix files: shapes, defaults, shorthands, profiles, paths."""

from __future__ import annotations

import textwrap
import warnings
from pathlib import Path

import pytest

from stackmatrix.errors import SpecError
from stackmatrix.spec.load import SpecDeprecationWarning, load_spec
from stackmatrix.spec.models import (
    SETUP_TIMEOUT,
    CommandProbe,
    HttpProbe,
    LogProbe,
    PostgresProbe,
    RedisProbe,
    RunOptions,
    SetupStep,
    TcpProbe,
)

SERVICES = "overlays: [{compose: {services: {db: {image: x}, cache: {image: y}}}}]\n"


def write(tmp_path: Path, body: str, *, name: str = "matrix.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


def minimal(tmp_path: Path, extra: str = "", tests: str = "tests: {command: 'true'}\n") -> Path:
    return write(tmp_path, "axes: {v: [a, b]}\n" + SERVICES + tests + textwrap.dedent(extra))


def test_the_design_example_loads(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text("services: {db: {image: pg}}\n", encoding="utf-8")
    path = write(
        tmp_path,
        """\
        name: shop
        compose: [compose.yaml]
        axes:
          postgres: ["13", "15", "17"]
          redis: ["off", "on"]
        exclude:
          - {postgres: "13", redis: "on"}
        include:
          - {postgres: "17", redis: "on", experimental: true}
        overlays:
          - when: {}
            compose:
              services:
                db: {build: {context: images/postgres, args: {PG: "${{ matrix.postgres }}"}}}
          - when: {redis: "on"}
            compose:
              services:
                cache: {image: "local/redis:7"}
        ready:
          db: {postgres: 5432}
        tests:
          command: ["pytest", "tests/integration", "--junitxml=${{ junit }}"]
          env:
            DATABASE_URL: "postgresql://postgres@${{ ports.db.5432 }}/postgres"
          timeout: 10m
        run: {jobs: 3, fail_fast: false, up_timeout: 2m, down_timeout: 30s}
        profiles:
          nightly: {axes: {postgres: ["13", "15", "17"], redis: ["off", "on"]}}
        """,
    )
    spec = load_spec(path)
    assert spec.path == path
    assert spec.name == "shop"
    assert spec.compose == (tmp_path / "compose.yaml",)
    assert spec.axes == {"postgres": ["13", "15", "17"], "redis": ["off", "on"]}
    assert spec.include == ({"postgres": "17", "redis": "on", "experimental": True},)
    assert spec.overlays[1].when == {"redis": ("on",)}
    assert spec.ready == {"db": (PostgresProbe(port=5432),)}
    assert spec.tests.command == ("pytest", "tests/integration", "--junitxml=${{ junit }}")
    assert spec.tests.timeout == 600
    assert spec.tests.workdir == tmp_path
    assert spec.tests.where == "host"
    assert spec.run == RunOptions(jobs=3, up_timeout=120, down_timeout=30)
    assert spec.run.ready_timeout == 60
    assert spec.matrix_keys == ("postgres", "redis", "experimental")


def test_every_probe_shape(tmp_path: Path) -> None:
    spec = load_spec(
        minimal(
            tmp_path,
            """\
            ready:
              db:
                - {postgres: {port: 5433, user: app, database: shop}}
                - {tcp: 5433}
                - {log: "ready to accept"}
                - {command: [pg_isready, -q]}
                - {command: "pg_isready -h 'local host'"}
              cache:
                - {redis: 6379}
                - {http: 8080}
                - {http: {port: 8080, path: /health, status: 204}}
            """,
        )
    )
    assert spec.ready["db"] == (
        PostgresProbe(port=5433, user="app", database="shop"),
        TcpProbe(port=5433),
        LogProbe(pattern="ready to accept"),
        CommandProbe(command=("pg_isready", "-q")),
        CommandProbe(command=("pg_isready", "-h", "local host")),
    )
    assert spec.ready["cache"] == (
        RedisProbe(port=6379),
        HttpProbe(port=8080),
        HttpProbe(port=8080, path="/health", status=204),
    )
    assert [p.kind for p in spec.ready["db"]] == ["postgres", "tcp", "log", "command", "command"]


@pytest.mark.parametrize(
    ("given", "seconds"),
    [("90", 90.0), (90, 90.0), (1.5, 1.5), ("90s", 90.0), ("10m", 600.0), ("1h", 3600.0),
     ("1m30s", 90.0), ("1h2m3s", 3723.0), ("0.5s", 0.5)],
)  # fmt: skip
def test_durations(tmp_path: Path, given: object, seconds: float) -> None:
    spec = load_spec(minimal(tmp_path, f"run: {{up_timeout: {given!r}}}\n".replace("'", '"')))
    assert spec.run.up_timeout == seconds


def test_string_command_is_split_and_keeps_templates_whole(tmp_path: Path) -> None:
    tests = "tests: {command: \"pytest -k 'a and b' --pg=${{ matrix.v }} ${{ ports.db.5432 }}\"}\n"
    spec = load_spec(minimal(tmp_path, tests=tests))
    assert spec.tests.command == (
        "pytest",
        "-k",
        "a and b",
        "--pg=${{ matrix.v }}",
        "${{ ports.db.5432 }}",
    )


def test_shell_command_stays_a_string(tmp_path: Path) -> None:
    spec = load_spec(
        minimal(tmp_path, tests="tests: {shell: true, command: 'make test && echo ok'}\n")
    )
    assert spec.tests.command == "make test && echo ok"
    spec = load_spec(minimal(tmp_path, tests="tests: {shell: true, command: [echo, 'a b']}\n"))
    assert spec.tests.command == "echo 'a b'"


def test_env_values_become_strings_and_where_names_a_service(tmp_path: Path) -> None:
    tests = "tests: {command: x, env: {A: 1, B: true, C: 1.5, D: text}, where: db, workdir: sub}\n"
    (tmp_path / "sub").mkdir()
    spec = load_spec(minimal(tmp_path, tests=tests))
    assert spec.tests.env == {"A": "1", "B": "true", "C": "1.5", "D": "text"}
    assert spec.tests.where == "db"
    assert spec.tests.workdir == tmp_path / "sub"


def test_a_workdir_that_does_not_exist_yet_loads(tmp_path: Path) -> None:
    # A nox session may make it just before the tests: only commands that run them check it.
    tests = "tests: {command: x, workdir: .nox/realworld/src/app}\n"
    spec = load_spec(minimal(tmp_path, tests=tests))
    assert spec.tests.workdir == tmp_path / ".nox" / "realworld" / "src" / "app"


def test_yaml_12_scalars_anchors_and_extension_keys(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        x-values: &values [on, off, yes, 3.10, "3.10", 0o17, 2024-01-01]
        axes:
          v: *values
        overlays:
          - compose: &stack {services: {db: {image: x}}}
          - when: {v: "on"}
            compose: *stack
        tests: {command: x}
        """,
    )
    spec = load_spec(path)
    assert spec.axes["v"] == ["on", "off", "yes", 3.1, "3.10", 15, "2024-01-01"]
    assert spec.overlays[1].compose == {"services": {"db": {"image": "x"}}}


def test_name_defaults_to_the_directory(tmp_path: Path) -> None:
    folder = tmp_path / "My Project_2"
    folder.mkdir()
    assert load_spec(minimal(folder)).name == "my-project-2"


def test_include_only_matrix(tmp_path: Path) -> None:
    path = write(tmp_path, "include: [{site: a}, {site: b}]\n" + SERVICES + "tests: {command: x}\n")
    assert load_spec(path).matrix_keys == ("site",)


def test_profiles_replace_then_extend(tmp_path: Path) -> None:
    body = """\
    profiles:
      nightly:
        axes: {v: [c]}
        exclude: []
        include: [{v: z}]
        extend:
          axes: {v: [d], w: [1, 2]}
          include: [{v: y}]
        run: {jobs: 8}
    exclude: [{v: b}]
    include: [{v: q}]
    run: {fail_fast: true}
    """
    path = minimal(tmp_path, body)
    plain = load_spec(path)
    assert plain.profile is None
    assert plain.axes == {"v": ["a", "b"]}
    nightly = load_spec(path, profile="nightly")
    assert nightly.profile == "nightly"
    assert nightly.axes == {"v": ["c", "d"], "w": [1, 2]}
    assert nightly.exclude == ()
    assert nightly.include == ({"v": "z"}, {"v": "y"})
    assert nightly.run.jobs == 8
    assert nightly.run.fail_fast is True
    assert set(nightly.profiles) == {"nightly"}


def test_the_spec_is_immutable(tmp_path: Path) -> None:
    spec = load_spec(minimal(tmp_path))
    with pytest.raises(ValueError, match="frozen"):
        spec.name = "other"  # type: ignore[misc]


def test_a_missing_file_is_a_spec_error(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as caught:
        load_spec(tmp_path / "nope.yaml")
    assert caught.value.problems == [f"{tmp_path / 'nope.yaml'}: file not found"]
    assert caught.value.exit_code == 2


def test_several_problems_are_reported_at_once_in_file_order(tmp_path: Path) -> None:
    path = write(tmp_path, "axes: {v: []}\ntests: {command: x, shel: true}\nrunn: {}\n")
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    assert caught.value.problems == [
        f"{path}:2:21: tests.shel: unknown key 'shel' — did you mean 'shell'?",
        f"{path}:3:1: runn: unknown key 'runn' — did you mean 'run'?",
    ]


def test_a_profile_that_narrows_axes_keeps_excludes_and_overlays_valid(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        axes: {v: [a, b]}
        exclude: [{v: a}]
        overlays:
          - compose: {services: {db: {image: x}}}
          - when: {v: a}
            compose: {services: {extra: {image: z}}}
        tests: {command: x}
        profiles:
          only-b: {axes: {v: [b]}}
        """,
    )
    spec = load_spec(path, profile="only-b")
    assert spec.axes == {"v": ["b"]}
    assert spec.exclude == ({"v": "a"},)
    assert spec.overlays[1].when == {"v": ("a",)}


def test_a_profile_does_not_hide_problems_of_the_file(tmp_path: Path) -> None:
    path = minimal(tmp_path, "exclude: [{v: c}]\nprofiles: {p: {exclude: []}}\n")
    with pytest.raises(SpecError, match=r"exclude\[0\]\.v: 'c' is not a value of axis 'v'"):
        load_spec(path, profile="p")


def test_setup_takes_one_step_or_a_list_like_the_tests(tmp_path: Path) -> None:
    one = load_spec(minimal(tmp_path, tests="tests: {command: x, setup: {command: 'm up'}}\n"))
    (step,) = one.tests.setup
    assert step == SetupStep(command=("m", "up"))
    assert (step.where, step.timeout, step.shell, step.env) == ("host", SETUP_TIMEOUT, False, {})
    many = load_spec(
        minimal(
            tmp_path,
            tests=textwrap.dedent("""\
                tests:
                  command: x
                  setup:
                    - {command: [psql, -c, 'create extension x'], where: db, timeout: 30s}
                    - {shell: true, command: 'm up && m seed', env: {N: 3}}
                """),
        )
    )
    assert [(s.command, s.where, s.timeout, s.env) for s in many.tests.setup] == [
        (("psql", "-c", "create extension x"), "db", 30.0, {}),
        ("m up && m seed", "host", SETUP_TIMEOUT, {"N": "3"}),
    ]


def test_each_older_template_form_warns_once_naming_where(tmp_path: Path) -> None:
    path = minimal(
        tmp_path,
        tests=textwrap.dedent("""\
            tests:
              command: [pytest, '--junitxml={junit}', '--pg={{ matrix.v }}']
              env: {URL: 'http://{{ ports.db.5432 }}/', NEW: '${{ ports.db.5432 }}'}
            """),
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")  # as a command line shows them
        spec = load_spec(path)
        load_spec(path)  # loaded again in the same run (nox sessions): no second warning
    assert all(w.category is SpecDeprecationWarning for w in caught)
    assert sorted(str(w.message) for w in caught) == [
        f"{path}:4: {{junit}}: the {{junit}} form is deprecated; write ${{{{ junit }}}}",
        f"{path}:4: {{{{ matrix.v }}}} (and 1 more): the {{{{ ... }}}} form is deprecated;"
        " write ${{ ... }}",
    ]
    assert spec.tests.command[1] == "--junitxml={junit}"  # it still works
