"""Rendering a variant into a compose document, and the tests templates."""

from __future__ import annotations

import shlex
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from stackmatrix.compose.merge import long_ports, merge
from stackmatrix.compose.render import (
    TemplateError,
    dump_compose,
    expand_template,
    project_name,
    render,
    when_matches,
)
from stackmatrix.errors import SpecError, UsageError
from stackmatrix.matrix.expand import Variant, expand
from stackmatrix.spec.load import load_spec
from stackmatrix.spec.models import Spec

LABELS = {"io.stackmatrix.run": "r1", "io.stackmatrix.variant": "pg-15"}


def make_spec(tmp_path: Path, compose: str | None, matrix: str) -> Spec:
    if compose is not None:
        (tmp_path / "base").mkdir(exist_ok=True)
        (tmp_path / "base" / "compose.yaml").write_text(textwrap.dedent(compose), encoding="utf-8")
    head = "compose: base/compose.yaml\n" if compose is not None else ""
    (tmp_path / "matrix.yaml").write_text(
        head + textwrap.dedent(matrix) + "tests: {command: 'true'}\n", encoding="utf-8"
    )
    return load_spec(tmp_path / "matrix.yaml")


def render_one(spec: Spec, index: int = 0, run_id: str = "r1") -> dict[str, Any]:
    return render(spec, expand(spec)[index], run_id=run_id)


BASE = """\
services:
  db:
    image: "postgres:${{ matrix.pg }}"
    environment: [POSTGRES_DB=shop, "PGDATA=${PGDATA:-/data}", EMPTY]
    ports: ["5432", "127.0.0.1:15432:5432"]
    command: [postgres, -c, fsync=off]
    labels: [team=db]
    volumes: ["./init:/docker-entrypoint-initdb.d:ro", "data:/var/lib/postgresql/data"]
    env_file: [common.env]
  app:
    build: ./app
    depends_on: [db]
    ports: [{target: 8000, published: 8000}, {target: 9000, host_ip: 0.0.0.0}]
    extends: {file: ../shared.yaml, service: base}
volumes:
  data:
  old: {external: true}
networks:
  back: {labels: {tier: back}}
configs:
  cfg: {file: ./cfg.txt}
secrets:
  pw: {file: pw.txt}
name: ignored
"""


def test_render_merges_labels_ports_and_paths(tmp_path: Path) -> None:
    spec = make_spec(
        tmp_path,
        BASE,
        """\
        name: shop
        axes: {pg: ["15", "17"]}
        overlays:
          - compose:
              services:
                db:
                  environment: {POSTGRES_DB: other, NEW: "x"}
                  ports: ["5432", "6432"]
                  command: ["postgres"]
                  labels: {team: data}
                  volumes: ["./seed:/docker-entrypoint-initdb.d"]
                app:
                  depends_on: {cache: {condition: service_healthy}}
          - when: {pg: "17"}
            compose:
              services:
                cache: {image: redis}
        """,
    )
    variant = expand(spec)[0]
    assert variant.id == "pg-15"
    doc = render(spec, variant, run_id="r1")
    base = tmp_path / "base"
    db, app = doc["services"]["db"], doc["services"]["app"]
    assert set(doc["services"]) == {"db", "app"}  # the pg=17 overlay does not apply
    assert "name" not in doc
    assert db["image"] == "postgres:15"
    assert db["environment"] == {
        "POSTGRES_DB": "other",
        "PGDATA": "${PGDATA:-/data}",
        "EMPTY": None,
        "NEW": "x",
    }
    assert db["command"] == ["postgres"]
    assert db["labels"] == {"team": "data", **LABELS}
    assert db["ports"] == [
        {"target": 5432, "host_ip": "127.0.0.1", "protocol": "tcp"},
        {"target": 5432, "published": "15432", "host_ip": "127.0.0.1", "protocol": "tcp"},
        {"target": 6432, "host_ip": "127.0.0.1", "protocol": "tcp"},
    ]
    assert db["volumes"] == [
        "data:/var/lib/postgresql/data",
        f"{tmp_path}/seed:/docker-entrypoint-initdb.d",
    ]
    assert db["env_file"] == [f"{base}/common.env"]
    assert app["build"] == {"context": f"{base}/app"}
    assert app["extends"] == {"file": str(tmp_path / "shared.yaml"), "service": "base"}
    assert app["depends_on"] == {
        "db": {"condition": "service_started"},
        "cache": {"condition": "service_healthy"},
    }
    assert app["ports"] == [
        {"target": 8000, "published": "8000", "host_ip": "127.0.0.1", "protocol": "tcp"},
        {"target": 9000, "host_ip": "0.0.0.0", "protocol": "tcp"},  # noqa: S104 - given by the spec
    ]
    assert doc["volumes"] == {"data": {"labels": LABELS}, "old": {"external": True}}
    assert doc["networks"] == {
        "back": {"labels": {"tier": "back", **LABELS}},
        "default": {"labels": LABELS},
    }
    assert doc["configs"] == {"cfg": {"file": f"{base}/cfg.txt"}}
    assert doc["secrets"] == {"pw": {"file": f"{base}/pw.txt"}}


def test_overlay_when_lists_and_experimental(tmp_path: Path) -> None:
    spec = make_spec(
        tmp_path,
        None,
        """\
        axes: {pg: ["13", "15", "17"]}
        include: [{pg: "17", experimental: true}]
        overlays:
          - compose: {services: {db: {image: "pg:${{ matrix.pg }}"}}}
          - when: {pg: ["13", "15"]}
            compose: {services: {old: {image: x}}}
          - when: {experimental: true}
            compose: {services: {canary: {image: "y-${{ matrix.experimental }}"}}}
          - when: {experimental: false}
            compose: {services: {stable: {image: z}}}
        """,
    )
    rendered = [set(render_one(spec, i)["services"]) for i in range(3)]
    assert rendered == [{"db", "old", "stable"}, {"db", "old", "stable"}, {"db", "canary"}]
    assert render_one(spec, 2)["services"]["canary"]["image"] == "y-true"


def test_substitution_keeps_compose_interpolation_and_escapes_dollars(tmp_path: Path) -> None:
    spec = make_spec(
        tmp_path,
        None,
        """\
        axes: {tag: ["v$1"], n: [15]}
        overlays:
          - compose:
              services:
                "svc-${{ matrix.n }}":
                  image: "img:${{ matrix.tag }}"
                  environment:
                    HOME_DIR: "${HOME}"
                    N: "${{matrix.n}}"
                    MISSING: "[${{ matrix.extra }}]"
        include: [{tag: other, extra: x}]
        """,
    )
    service = render_one(spec)["services"]["svc-15"]
    assert service["image"] == "img:v$$1"
    assert service["environment"] == {"HOME_DIR": "${HOME}", "N": "15", "MISSING": "[]"}


def test_ports_short_syntax() -> None:
    assert long_ports("8080") == [{"target": 8080, "host_ip": "127.0.0.1", "protocol": "tcp"}]
    assert long_ports(53) == [{"target": 53, "host_ip": "127.0.0.1", "protocol": "tcp"}]
    assert long_ports("5353/udp") == [{"target": 5353, "host_ip": "127.0.0.1", "protocol": "udp"}]
    assert long_ports("127.0.0.1::5000") == [
        {"target": 5000, "host_ip": "127.0.0.1", "protocol": "tcp"}
    ]
    assert long_ports("[::1]:6001:6001") == [
        {"target": 6001, "published": "6001", "host_ip": "::1", "protocol": "tcp"}
    ]
    assert long_ports("9090-9091:8080-8081") == [
        {"target": 8080, "published": "9090", "host_ip": "127.0.0.1", "protocol": "tcp"},
        {"target": 8081, "published": "9091", "host_ip": "127.0.0.1", "protocol": "tcp"},
    ]
    assert long_ports("3000-3001") == [
        {"target": 3000, "host_ip": "127.0.0.1", "protocol": "tcp"},
        {"target": 3001, "host_ip": "127.0.0.1", "protocol": "tcp"},
    ]
    assert long_ports("${WEB_PORT:-8080}:80") == [
        {"target": 80, "published": "${WEB_PORT:-8080}", "host_ip": "127.0.0.1", "protocol": "tcp"}
    ]
    assert long_ports({"target": "80", "published": 0, "mode": "host"}) == [
        {"target": 80, "host_ip": "127.0.0.1", "protocol": "tcp", "mode": "host"}
    ]
    with pytest.raises(SpecError, match="IPv6"):
        long_ports("::1:80:80")


def test_merge_rules() -> None:
    base = {
        "services": {
            "a": {
                "command": ["x", "y"],
                "dns": ["1.1.1.1"],
                "healthcheck": {"test": ["CMD", "a"], "retries": 3},
            }
        }
    }
    over = {
        "services": {
            "a": {
                "command": ["z"],
                "dns": ["1.1.1.1", "8.8.8.8"],
                "healthcheck": {"test": ["CMD", "b"]},
            }
        }
    }
    assert merge(base, over) == {
        "services": {
            "a": {
                "command": ["z"],
                "dns": ["1.1.1.1", "8.8.8.8"],
                "healthcheck": {"test": ["CMD", "b"], "retries": 3},
            }
        }
    }
    assert base["services"]["a"]["command"] == ["x", "y"]  # inputs are not changed


def test_output_is_deterministic_and_quotes_what_compose_would_misread(tmp_path: Path) -> None:
    spec = make_spec(
        tmp_path,
        BASE,
        """\
        axes: {pg: ["15"]}
        overlays:
          - compose:
              services:
                db: {environment: {A: "on", B: "0o17", C: "1e3", D: "true", E: "a\\nb"}}
        """,
    )
    first = dump_compose(render_one(spec))
    assert first == dump_compose(render_one(spec))
    environment = yaml.safe_load(first)["services"]["db"]["environment"]
    assert environment["A"] == "on"
    assert "B: '0o17'" in first
    assert "C: '1e3'" in first
    assert "D: 'true'" in first
    assert environment["E"] == "a\nb"


def test_project_name_and_run_id(tmp_path: Path) -> None:
    spec = make_spec(
        tmp_path,
        None,
        "name: shop\naxes: {pg: ['15']}\noverlays: [{compose: {services: {db: {image: x}}}}]\n",
    )
    variant = expand(spec)[0]
    assert project_name(spec, variant, "20260101-abc") == "shop-pg-15-20260101-abc"
    with pytest.raises(UsageError, match="invalid run id"):
        render(spec, variant, run_id="Bad Id")


def test_a_broken_compose_file_is_a_spec_error(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, "services: {db: {image: x}}\n", "axes: {pg: ['15']}\n")
    (tmp_path / "base" / "compose.yaml").write_text("- not a mapping\n", encoding="utf-8")
    with pytest.raises(SpecError, match=r"compose.yaml: \(root\): expected a compose mapping"):
        render_one(spec)


def test_when_matches() -> None:
    assert when_matches({}, {"a": 1})
    assert when_matches({"a": (1, 2)}, {"a": 2.0})
    assert not when_matches({"a": (True,)}, {"a": 1})
    assert not when_matches({"b": ("x",)}, {"a": 1})
    assert when_matches({"experimental": (False,)}, {"a": 1})


CONTEXT = {
    "ports": {"db": {5432: "127.0.0.1:49153"}, "web": {"8080/tcp": "127.0.0.1:49154"}},
    "matrix": {"pg": "15", "flag": True},
    "variant": "pg-15",
    "run_id": "r1",
    "junit": "/out/junit.xml",
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("postgresql://u@{{ ports.db.5432 }}/db", "postgresql://u@127.0.0.1:49153/db"),
        ("http://{{ports.web.8080}}/", "http://127.0.0.1:49154/"),
        (
            "pg={{ matrix.pg }} flag=${{ matrix.flag }} none=[{{ matrix.absent }}]",
            "pg=15 flag=true none=[]",
        ),
        ("{{ variant }}/{{ run_id }}", "pg-15/r1"),
        ("--junitxml={junit}", "--junitxml=/out/junit.xml"),
        ("--junitxml={{ junit }}", "--junitxml=/out/junit.xml"),
        ("no {templates} here; {x}", "no {templates} here; {x}"),
    ],
)
def test_expand_template(text: str, expected: str) -> None:
    assert expand_template(text, CONTEXT) == expected


def test_shell_expansion_puts_each_value_in_as_one_quoted_word() -> None:
    hostile = {"matrix": {"v": "$(touch x); echo 'hi' `id` & ${HOME}", "pg": "15"}}
    line = expand_template("run {{ matrix.v }} --pg={{ matrix.pg }}", hostile, quote=shlex.quote)
    assert line == "run '$(touch x); echo '\"'\"'hi'\"'\"' `id` & ${HOME}' --pg=15"
    assert shlex.split(line) == ["run", hostile["matrix"]["v"], "--pg=15"]


def test_expand_template_errors_name_what_exists() -> None:
    with pytest.raises(TemplateError) as caught:
        expand_template("{{ ports.db.5433 }}", CONTEXT)
    assert str(caught.value) == (
        "{{ ports.db.5433 }}: service 'db' publishes no port 5433; published: db.5432, web.8080/tcp"
    )
    with pytest.raises(TemplateError, match="service 'cache' publishes no ports"):
        expand_template("{{ ports.cache.6379 }}", CONTEXT)
    with pytest.raises(TemplateError, match="unknown reference"):
        expand_template("{{ secrets.x }}", CONTEXT)
    with pytest.raises(TemplateError, match="no value for 'junit'"):
        expand_template("{junit}", {"matrix": {}})
    assert TemplateError("x").exit_code == 2


def test_variants_built_by_hand_render(tmp_path: Path) -> None:
    spec = make_spec(
        tmp_path,
        None,
        "axes: {pg: ['15']}\n"
        "overlays: [{compose: {services: {db: {image: 'pg:${{ matrix.pg }}'}}}}]\n",
    )
    doc = render(spec, Variant("custom", {"pg": "9"}), run_id="r2")
    assert doc["services"]["db"]["image"] == "pg:9"
    assert doc["services"]["db"]["labels"] == {
        "io.stackmatrix.run": "r2",
        "io.stackmatrix.variant": "custom",
    }


# -- include: ---------------------------------------------------------------------------------


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_what_an_include_brings_is_inlined_labelled_and_resolved_against_its_own_folder(
    tmp_path: Path,
) -> None:
    _write(
        tmp_path / "side" / "extra.yaml",
        """\
        include: [deeper/more.yaml]
        services:
          cache:
            image: debian:bookworm-slim
            env_file: [cache.env]
            ports: ["6379"]
            volumes: [cachedata:/data, ./conf:/conf]
        volumes: {cachedata: {}}
        networks: {back: {}}
        """,
    )
    _write(tmp_path / "side" / "deeper" / "more.yaml", "services: {job: {image: busybox}}\n")
    spec = make_spec(
        tmp_path,
        "include: [../side/extra.yaml]\nservices: {db: {image: postgres}}\n",
        "axes: {pg: ['15']}\n",
    )
    data = render_one(spec)
    assert "include" not in data
    assert list(data["services"]) == ["job", "cache", "db"]
    for service in data["services"].values():
        assert service["labels"] == LABELS
    assert data["volumes"]["cachedata"]["labels"] == LABELS
    assert data["networks"]["back"]["labels"] == LABELS
    cache = data["services"]["cache"]
    assert cache["env_file"] == [str(tmp_path / "side" / "cache.env")]
    assert cache["volumes"][1] == f"{tmp_path / 'side' / 'conf'}:/conf"
    assert cache["ports"] == [{"target": 6379, "host_ip": "127.0.0.1", "protocol": "tcp"}]


def test_the_including_document_and_overlays_win_over_an_included_service(
    tmp_path: Path,
) -> None:
    _write(tmp_path / "extra.yaml", "services: {cache: {image: redis, command: [a]}}\n")
    spec = make_spec(
        tmp_path,
        "include: [{path: ../extra.yaml}]\nservices: {cache: {command: [b]}}\n",
        "axes: {pg: ['15']}\n",
    )
    assert render_one(spec)["services"]["cache"] == {
        "image": "redis", "command": ["b"], "labels": LABELS,
    }  # fmt: skip


def test_an_include_env_file_interpolates_the_included_file(tmp_path: Path) -> None:
    _write(tmp_path / "extra.env", "CACHE_TAG=7.2\n")
    _write(
        tmp_path / "extra.yaml",
        "services: {cache: {image: 'redis:${CACHE_TAG}', command: [echo, $$HOME]}}\n",
    )
    spec = make_spec(
        tmp_path,
        "include: [{path: ../extra.yaml, env_file: ../extra.env}]\nservices: {db: {image: pg}}\n",
        "axes: {pg: ['15']}\n",
    )
    cache = render_one(spec)["services"]["cache"]
    assert cache["image"] == "redis:7.2"
    assert cache["command"] == ["echo", "$$HOME"]  # compose's own escape stays


def test_a_file_that_includes_itself_is_a_spec_error(tmp_path: Path) -> None:
    _write(tmp_path / "loop.yaml", "include: [loop.yaml]\nservices: {a: {image: x}}\n")
    spec = make_spec(
        tmp_path, "include: [../loop.yaml]\nservices: {db: {image: pg}}\n", "axes: {pg: ['15']}\n"
    )
    with pytest.raises(SpecError, match=r"include: .*loop\.yaml includes itself"):
        render_one(spec)
