"""Real Compose v2 accepts every rendered variant of the project's matrix files."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from python_on_whales import DockerClient

from stackmatrix.compose.render import dump_compose, project_name, render
from stackmatrix.matrix.expand import expand
from stackmatrix.spec.load import load_spec

pytestmark = pytest.mark.integration

ROOT = Path(__file__).parents[2]
EXAMPLES = sorted((ROOT / "examples" / "specs").glob("*/matrix.yaml"))
SPECS = [ROOT / "matrix.yaml", *EXAMPLES]


def _compose_config(text: str, project: str, directory: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", "compose", "-p", project, "--project-directory", str(directory), "-f", "-",
         "config", "--format", "json"],
        input=text, capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip


@pytest.mark.parametrize("path", SPECS, ids=[str(p.relative_to(ROOT)) for p in SPECS])
def test_compose_accepts_every_variant(
    path: Path, docker_engine: DockerClient, session_run_id: str
) -> None:
    if not path.exists():
        pytest.skip(f"{path.relative_to(ROOT)} is not in the repository yet")
    spec = load_spec(path)
    variants = expand(spec)
    assert variants
    for variant in variants:
        text = dump_compose(render(spec, variant, run_id=session_run_id))
        project = project_name(spec, variant, session_run_id)
        result = _compose_config(text, project, path.parent)
        assert result.returncode == 0, f"{variant.id}: compose rejected it:\n{result.stderr}"
        assert f'"name": "{project}"' in result.stdout
        assert "io.stackmatrix.variant" in result.stdout


def test_compose_rejects_a_broken_render(docker_engine: DockerClient, tmp_path: Path) -> None:
    # The check above can fail: compose does reject an invalid document.
    result = _compose_config("services: {db: {image: x, ports: [{target: nope}]}}\n", "x", tmp_path)
    assert result.returncode != 0
