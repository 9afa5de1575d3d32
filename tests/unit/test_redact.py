"""Secrets stay secret: which names count as secret, how their values are masked in what
stackmatrix prints and stores, and who may read the compose files it writes.

The real-run checks (run.json, reports, annotations, process command lines, compose file
modes) are in tests/integration/test_hostile_input.py.
"""

from __future__ import annotations

import errno
import os
import stat
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stackmatrix.cli.main import main
from stackmatrix.compose.render import holds_secrets
from stackmatrix.engine.processes import run_logged
from stackmatrix.redact import (
    MASK,
    SECRET_WORDS,
    compose_secrets,
    interpolate,
    is_secret_name,
    redact_env,
    redact_file,
    redact_text,
)
from stackmatrix.results import files as files_module
from stackmatrix.results.files import (
    OutputError,
    seal_variant_dir,
    write_json_atomic,
    write_private_if,
)

SECRET_NAMES = [
    "PASSWORD", "POSTGRES_PASSWORD", "db_password", "PGPASSWORD", "MYSQL_ROOT_PASSWORD",
    "DB_PASSWD", "API_TOKEN", "GITHUB_TOKEN", "npm_token", "AWS_SECRET_ACCESS_KEY",
    "CLIENT_SECRET", "Secret_Value", "SSH_PRIVATE_KEY", "api_key", "REGISTRY_CREDENTIALS",
    "BASIC_AUTH",
]  # fmt: skip
PLAIN_NAMES = [
    "PATH", "HOME", "LANG", "CI", "DATABASE_HOST", "GITHUB_SHA", "PYTHONPATH",
    "STACKMATRIX_VARIANT", "STACKMATRIX_DB_5432",
]  # fmt: skip


@pytest.mark.parametrize("name", SECRET_NAMES)
def test_secret_looking_names_are_masked(name: str) -> None:
    assert is_secret_name(name)
    assert redact_env({name: "s3cr3t-value"}) == {name: MASK}


@pytest.mark.parametrize("name", PLAIN_NAMES)
def test_plain_names_are_shown(name: str) -> None:
    assert not is_secret_name(name)
    assert redact_env({name: "/usr/bin"}) == {name: "/usr/bin"}


_TEXT = st.text(alphabet=st.characters(blacklist_characters="•"), max_size=40)


@given(prefix=_TEXT, secret=_TEXT.filter(lambda s: len(s) >= 3), suffix=_TEXT)
def test_a_secret_never_survives_redaction(prefix: str, secret: str, suffix: str) -> None:
    masked = redact_text(prefix + secret + suffix + secret, [secret])
    assert secret not in masked
    assert MASK in masked


def test_a_secret_inside_a_longer_secret_is_masked_whole() -> None:
    text = "token=abc-hunter22-xyz password=hunter22"
    assert redact_text(text, ["hunter22", "abc-hunter22-xyz"]) == f"token={MASK} password={MASK}"


def test_a_password_in_any_url_is_masked_without_being_named() -> None:
    text = "connect to postgresql://app:pa55word@127.0.0.1:5432/db failed"
    assert redact_text(text) == f"connect to postgresql://app:{MASK}@127.0.0.1:5432/db failed"


def test_the_logged_command_line_is_masked_but_the_command_gets_the_secret(
    tmp_path: Path,
) -> None:
    given = "tok-0a1b2c3d4e"
    log = tmp_path / "tests.log"
    argv = ["sh", "-c", 'test "$1" = "$API_TOKEN" && echo "the command got it"', "sh", given]

    outcome = run_logged(
        argv,
        log_path=log,
        env={"PATH": "/usr/bin:/bin", "API_TOKEN": given},
        cwd=tmp_path,
        timeout=30,
        cancel=threading.Event(),
        secrets=[given],
    )

    assert outcome.exit_code == 0
    header, *rest = log.read_text().splitlines()
    assert header.startswith("$ sh -c ")
    assert header.endswith(f" sh {MASK}")
    assert given not in header
    assert rest == ["the command got it"]


MATRIX = """\
name: shop
axes: {flavor: [a]}
overlays:
  - compose:
      services:
        db:
          image: debian:bookworm-slim
          environment: {POSTGRES_PASSWORD: hunter2-db-password}
tests: {command: 'true'}
"""


def test_render_to_a_file_keeps_a_compose_file_with_secrets_private(tmp_path: Path) -> None:
    (tmp_path / "matrix.yaml").write_text(MATRIX)
    out = tmp_path / "flavor-a.yaml"

    code = main(["render", "flavor-a", "-f", str(tmp_path / "matrix.yaml"), "-o", str(out)])

    assert code == 0
    assert "hunter2-db-password" in out.read_text()
    assert stat.S_IMODE(out.stat().st_mode) & 0o077 == 0, oct(out.stat().st_mode)


@pytest.mark.parametrize(("listed", "private"), [(True, True), (False, False)])
def test_a_name_listed_under_secrets_makes_the_rendered_file_private(
    tmp_path: Path, listed: bool, private: bool
) -> None:
    matrix = MATRIX.replace("POSTGRES_PASSWORD: hunter2-db-password", "SHOP_DSN: dsn-value")
    if listed:
        matrix += "secrets: [SHOP_DSN]\n"
    (tmp_path / "matrix.yaml").write_text(matrix)
    out = tmp_path / "flavor-a.yaml"

    code = main(["render", "flavor-a", "-f", str(tmp_path / "matrix.yaml"), "-o", str(out)])

    assert code == 0
    assert "dsn-value" in out.read_text()
    assert (stat.S_IMODE(out.stat().st_mode) & 0o077 == 0) is private, oct(out.stat().st_mode)


# -- where a compose file's secrets come from ---------------------------------------------------


def test_compose_secrets_come_from_every_source_of_a_service(tmp_path: Path) -> None:
    env_file = tmp_path / "db.env"
    env_file.write_text(
        "# comment\nexport DB_PASSWORD='pw-from-env-file'\nHOST=db\nAPI_KEY=key-in-file # note\n"
    )
    secret_file = tmp_path / "token.txt"
    secret_file.write_text("file-secret-value\n")
    compose = {
        "services": {
            "db": {
                "environment": {"POSTGRES_PASSWORD": "${PGPASS}", "PLAIN": "${HOME_DIR}"},
                "env_file": [str(env_file), {"path": str(tmp_path / "missing.env")}],
                "build": {"context": ".", "args": ["NPM_TOKEN=npm-arg-value", "VERSION=3"]},
                "command": ["sh", "-c", "echo ${CI_TOKEN} $$NOT_A_REF ${DEPLOY_HOOK:-x}"],
            },
            "app": {"environment": ["GITHUB_TOKEN", "LANG=C"]},
        },
        "secrets": {"one": {"environment": "SIGNING_SECRET"}, "two": {"file": str(secret_file)}},
    }
    environ = {
        "PGPASS": "pg-interpolated",
        "HOME_DIR": "/home/ci",
        "CI_TOKEN": "ci-host-token",
        "GITHUB_TOKEN": "gh-passed-through",
        "NOT_A_REF": "plain-value",
        "DEPLOY_HOOK": "hook-listed",
        "SIGNING_SECRET": "signing-value",
    }
    found = compose_secrets(compose, ["DEPLOY_HOOK"], environ)
    for value in (
        "pg-interpolated", "pw-from-env-file", "key-in-file", "npm-arg-value", "ci-host-token",
        "gh-passed-through", "hook-listed", "signing-value", "file-secret-value",
    ):  # fmt: skip
        assert value in found, value
    for shown in ("/home/ci", "db", "3", "C", "plain-value"):
        assert shown not in found, shown


def test_compose_interpolation_follows_compose_defaults() -> None:
    env = {"SET": "v", "EMPTY": ""}
    assert interpolate("${SET}-${UNSET:-d1}-${EMPTY:-d2}-${EMPTY-d3}-$SET-$$SET", env) == (
        "v-d1-d2--v-$SET"
    )
    assert interpolate("${SET:+alt}${UNSET:+no}${SET:?err}", env) == "altv"


def test_redact_file_masks_atomically_and_never_through_a_link(tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("the secret hunter22 lives here\n")
    inside = tmp_path / "run"
    inside.mkdir()
    (inside / "link.log").symlink_to(outside)
    hard = inside / "hard.log"
    hard.hardlink_to(outside)
    plain = inside / "plain.log"
    plain.write_text("password hunter22 and <hunter22&amp;>\n")
    plain.chmod(0o640)

    assert redact_file(inside / "link.log", ["hunter22"]) is False
    assert redact_file(hard, ["hunter22"]) is True
    assert redact_file(plain, ["hunter22"]) is True

    assert outside.read_text() == "the secret hunter22 lives here\n"  # neither link wrote it
    assert hard.read_text() == f"the secret {MASK} lives here\n"
    assert plain.read_text() == f"password {MASK} and <{MASK}&amp;>\n"
    assert stat.S_IMODE(plain.stat().st_mode) == 0o640
    assert sorted(p.name for p in inside.iterdir()) == ["hard.log", "link.log", "plain.log"]


def test_redact_file_on_a_full_disk_blanks_secrets_in_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "tests.log"
    log.write_text("connecting with hunter22 to db\n")
    real_open = os.open

    def full_disk(path: object, flags: int, *args: object) -> int:
        if str(path).endswith(".redact"):  # the masked copy: no room for it
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_open(path, flags, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", full_disk)
    assert redact_file(log, ["hunter22"]) is True
    assert log.read_text() == "connecting with ******** to db\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tests.log"]


# -- the files of a run directory (results/files.py) --------------------------------------------


def test_seal_variant_dir_removes_links_and_masks_every_file_but_the_compose_file(
    tmp_path: Path,
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "report.xml").write_text("hunter22 outside\n")
    variant = tmp_path / "run" / "v1"
    (variant / "logs").mkdir(parents=True)
    (variant / "compose.yaml").write_text("PASSWORD: hunter22\n")
    (variant / "build.log").write_text("#5 building with hunter22\n")
    (variant / "logs" / "db.log").write_text("db hunter22\n")
    (variant / "junit.xml").symlink_to(outside / "report.xml")
    (variant / "elsewhere").symlink_to(outside)
    os.mkfifo(variant / "pipe")

    refused = seal_variant_dir(variant, ["hunter22"])

    assert refused == [
        f"elsewhere -> {outside}",
        f"junit.xml -> {outside / 'report.xml'}",
        "pipe (not a regular file)",
    ]
    assert (outside / "report.xml").read_text() == "hunter22 outside\n"
    assert (variant / "build.log").read_text() == f"#5 building with {MASK}\n"
    assert (variant / "logs" / "db.log").read_text() == f"db {MASK}\n"
    assert (variant / "compose.yaml").read_text() == "PASSWORD: hunter22\n"
    assert sorted(str(p.relative_to(variant)) for p in variant.rglob("*")) == [
        "build.log", "compose.yaml", "logs", "logs/db.log",
    ]  # fmt: skip


def test_a_variant_folder_replaced_by_a_link_is_refused_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "x.txt").write_text("token hunter22 here\n")
    variant = tmp_path / "run" / "v1"
    variant.parent.mkdir()
    variant.symlink_to(outside)  # the tests removed their folder and linked it elsewhere

    refused = seal_variant_dir(variant, ["hunter22"])

    assert refused == [f"v1 -> {outside}"]
    assert (outside / "x.txt").read_text() == "token hunter22 here\n"  # not rewritten
    assert variant.is_dir()
    assert not variant.is_symlink()
    assert list(variant.iterdir()) == []


def test_a_file_that_cannot_be_masked_is_removed_not_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    variant = tmp_path / "v1"
    variant.mkdir()
    (variant / "tests.log").write_text("hunter22\n")
    (variant / "junit.xml").write_text("<testsuite/>\n")

    def unreadable(path: Path, secrets: Sequence[str]) -> bool:
        if path.name == "tests.log":
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return False

    monkeypatch.setattr(files_module, "redact_file", unreadable)
    refused = seal_variant_dir(variant, ["hunter22"])

    assert refused == ["tests.log (could not be masked: Permission denied; removed)"]
    assert sorted(p.name for p in variant.iterdir()) == ["junit.xml"]


def test_private_writes_replace_a_link_instead_of_writing_through_it(tmp_path: Path) -> None:
    outside = tmp_path / "outside.yaml"
    outside.write_text("theirs\n")
    link = tmp_path / "compose.yaml"
    link.symlink_to(outside)
    write_private_if(link, "ours\n", private=True)
    assert outside.read_text() == "theirs\n"
    assert not link.is_symlink()
    assert link.read_text() == "ours\n"
    assert stat.S_IMODE(link.stat().st_mode) == 0o600


def test_a_write_whose_folder_became_a_file_is_a_clear_error(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    folder.write_text("not a folder\n")
    with pytest.raises(OutputError) as error:
        write_json_atomic(folder / "run.json", {"a": 1})
    assert str(error.value) == (
        f"cannot write {folder / 'run.json'}: File exists "
        "(its folder was removed or replaced while the run went on)"
    )
    assert error.value.exit_code == 3
    assert folder.read_text() == "not a folder\n"


def test_a_secret_split_by_a_chunk_boundary_is_masked_in_a_big_file(tmp_path: Path) -> None:
    secret = "hunter2-a-long-" + "value"
    chunk = 1 << 20  # redact_file reads a MiB at a time
    path = tmp_path / "service.log"
    # Three occurrences: one straddling the first chunk boundary, one in the middle, one at
    # the very end; 3 MiB of filler around them.
    head = b"x" * (chunk - 5) + secret.encode()
    middle = b"y" * chunk + b"<m>" + secret.encode() + b"</m>"
    path.write_bytes(head + middle + b"z" * chunk + secret.encode())

    assert redact_file(path, [secret])

    data = path.read_bytes()
    assert secret.encode() not in data
    assert data.count(MASK.encode()) == 3
    assert data.startswith(b"x" * (chunk - 5) + MASK.encode())
    assert data.endswith(b"z" * 100 + MASK.encode())


def test_a_file_without_secrets_is_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "tests.log"
    path.write_bytes(b"nothing to see\n" * 100_000)
    before = path.stat()
    assert not redact_file(path, ["hunter2-a-long-password"])
    assert path.stat().st_ino == before.st_ino  # not even rewritten


@pytest.mark.parametrize("word", SECRET_WORDS.split("|"))
def test_one_rule_for_secret_names_in_variables_and_in_compose_text(word: str) -> None:
    # A name the environment masks is a name that makes a compose file private, and back.
    assert is_secret_name(f"DB_{word}")
    document = {"services": {"db": {"labels": {f"db_{word.lower()}": "plain"}}}}
    assert holds_secrets(document)
    assert not holds_secrets({"services": {"db": {"labels": {"db_name": "plain"}}}})


def test_compose_secrets_read_the_project_env_file_compose_interpolates(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("VAULT_TOKEN=from-dotenv\nDB_PASSWORD=dotenv-pw\nPLAIN=x\n")
    document = {
        "services": {
            "db": {"environment": {"RELAY": "${VAULT_TOKEN}", "DB_PASSWORD": "${DB_PASSWORD}"}}
        }
    }
    found = compose_secrets(document, environ={}, project_dir=tmp_path)
    assert "from-dotenv" in found
    assert "dotenv-pw" in found
    # The environment wins over .env, as in compose; without a project directory, no .env.
    overridden = compose_secrets(document, environ={"DB_PASSWORD": "host-pw"}, project_dir=tmp_path)
    assert "host-pw" in overridden
    assert "dotenv-pw" not in overridden
    without = compose_secrets(document, environ={})
    assert "from-dotenv" not in without
    assert "dotenv-pw" not in without
    assert holds_secrets(document, project_dir=tmp_path)
