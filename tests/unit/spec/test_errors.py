"""A corpus of broken matrix files: each names the exact problems a user must see.

Every file in spec_errors/ starts with ``# expect: PROBLEM`` lines (in the order they are
reported) and optionally ``# profile: NAME``. Helper compose files live in spec_errors/_compose/.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from stackmatrix.errors import SpecError
from stackmatrix.spec.load import load_spec

CORPUS = Path(__file__).parent / "spec_errors"
CASES = sorted(CORPUS.glob("*.yaml"))


def _header(path: Path, key: str) -> list[str]:
    prefix = f"# {key}: "
    lines = path.read_bytes().decode("utf-8", "replace").splitlines()
    return [line.removeprefix(prefix) for line in lines if line.startswith(prefix)]


def test_the_corpus_is_large_enough() -> None:
    assert len(CASES) >= 30
    assert all(_header(case, "expect") for case in CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.stem for case in CASES])
def test_broken_file_reports_exactly(case: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(CORPUS)
    profile = next(iter(_header(case, "profile")), None)
    with pytest.raises(SpecError) as caught:
        load_spec(Path(case.name), profile=profile)
    assert caught.value.problems == _header(case, "expect")
    assert caught.value.exit_code == 2
