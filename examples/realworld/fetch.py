"""Download a package's source distribution from PyPI and unpack it, checked and idempotent.

    python examples/realworld/fetch.py sqlalchemy==2.1.9 --into .nox/realworld/src

unpacks the sdist into ``.nox/realworld/src/sqlalchemy/`` (the directory is named after the
package, not the version, so a matrix file can point its ``tests.workdir`` at it) and prints
that path. The archive's sha256 is checked against the one the index publishes (the JSON form
of the simple API, PEP 691) before anything is unpacked. A second call with the same version
does nothing; another version replaces the unpacked tree. Nothing here is vendored into the
repository: the suites are fetched by the ``realworld`` nox session.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import tarfile
import tempfile
import urllib.request
from pathlib import Path

INDEX = "https://pypi.org/simple"
SIMPLE_JSON = "application/vnd.pypi.simple.v1+json"
STAMP = ".fetched.json"
TIMEOUT = 120.0


class FetchError(Exception):
    """Something a user can act on: printed as one line, exit 1."""


def _normalized(name: str) -> str:
    return "-".join(name.lower().replace("_", "-").replace(".", "-").split("-"))


def sdist_of(name: str, version: str, index: str = INDEX) -> tuple[str, str, str]:
    """(filename, url, sha256) of the sdist of ``name==version`` as the index lists it."""
    request = urllib.request.Request(  # noqa: S310 - an https index URL
        f"{index.rstrip('/')}/{_normalized(name)}/", headers={"Accept": SIMPLE_JSON}
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as answer:  # noqa: S310
            page = json.load(answer)
    except OSError as exc:
        raise FetchError(f"{name}: cannot read the index page {request.full_url}: {exc}") from None
    wanted = {
        f"{prefix}-{version}.tar.gz"
        for prefix in (name, name.lower(), name.replace("-", "_"), name.lower().replace("-", "_"))
    }
    for file in page.get("files", []):
        if file.get("filename") in wanted and not file.get("yanked"):
            sha256 = file.get("hashes", {}).get("sha256")
            if not sha256:
                raise FetchError(f"{file['filename']}: the index publishes no sha256 for it")
            return file["filename"], file["url"], sha256
    raise FetchError(f"{name}=={version}: the index lists no sdist (.tar.gz) of that version")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _download(url: str, target: Path, sha256: str) -> None:
    if target.is_file() and _sha256(target) == sha256:
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    try:
        with (
            urllib.request.urlopen(url, timeout=TIMEOUT) as answer,  # noqa: S310
            partial.open("wb") as out,
        ):
            shutil.copyfileobj(answer, out)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise FetchError(f"{target.name}: download failed: {exc}") from None
    got = _sha256(partial)
    if got != sha256:
        partial.unlink(missing_ok=True)
        raise FetchError(f"{target.name}: sha256 {got} does not match the index's {sha256}")
    partial.replace(target)


def _unpack(archive: Path, dest: Path) -> None:
    """Unpack the archive's single top folder as ``dest`` (replacing it)."""
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=f".{dest.name}-") as scratch:
        with tarfile.open(archive) as tar:
            tar.extractall(scratch, filter="data")
        tops = list(Path(scratch).iterdir())
        if len(tops) != 1 or not tops[0].is_dir():
            raise FetchError(f"{archive.name}: expected one top-level folder, found {len(tops)}")
        shutil.rmtree(dest, ignore_errors=True)
        tops[0].rename(dest)


def fetch(requirement: str, into: Path, index: str = INDEX) -> Path:
    """Make ``into/<name>`` the unpacked sdist of ``name==version``; return that path."""
    name, sep, version = requirement.partition("==")
    if not sep or not name or not version:
        raise FetchError(f"{requirement!r}: expected NAME==VERSION")
    into.mkdir(parents=True, exist_ok=True)
    dest = into / _normalized(name)
    stamp = dest / STAMP
    if stamp.is_file():
        recorded = json.loads(stamp.read_text())
        if recorded.get("requirement") == f"{name}=={version}":
            return dest
    filename, url, sha256 = sdist_of(name, version, index)
    archive = into / "downloads" / filename
    _download(url, archive, sha256)
    _unpack(archive, dest)
    stamp.write_text(
        json.dumps({"requirement": f"{name}=={version}", "file": filename, "sha256": sha256})
    )
    return dest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("requirements", nargs="+", metavar="NAME==VERSION")
    parser.add_argument("--into", type=Path, required=True, help="where to unpack")
    parser.add_argument("--index", default=INDEX, help=f"simple index (default {INDEX})")
    args = parser.parse_args(argv)
    try:
        for requirement in args.requirements:
            print(fetch(requirement, args.into.resolve(), args.index))
    except FetchError as exc:
        print(f"fetch.py: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
