"""The validated shape of a matrix file: frozen pydantic models, no I/O."""

# No `from __future__ import annotations` here: pydantic would then turn every annotation back
# from text into a type (a compile per annotation) at each start of the command line.
import importlib
import os
import re
import sys
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, get_args

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    PlainValidator,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue, SkipJsonSchema
from pydantic_core import CoreSchema, PydanticCustomError

from stackmatrix.spec.templates import TEMPLATE
from stackmatrix.spec.values import Scalar, scalar_text

# pydantic looks for its plugins when it builds the validator of a model: it imports
# importlib.metadata and reads the entry points of every installed distribution, some 40 ms of
# each command that reads a matrix file. No plugin has any business with these models: they are
# built with a stand-in for that loader which finds none, taken away again at the end of this
# module, so that the models built after it get the real loader and their plugins (one that
# another thread built while this module was being imported would have found none).
_PLUGIN_LOADER = "pydantic.plugin._loader"


def _without_plugins() -> types.ModuleType | None:
    """Put the stand-in loader in place; None when the real one is loaded already."""
    if _PLUGIN_LOADER in sys.modules:
        return None  # loaded by someone else: nothing left to save
    stand_in = types.ModuleType(_PLUGIN_LOADER)

    def get_plugins() -> tuple[()]:
        return ()

    def __getattr__(name: str) -> Any:  # a module's own __getattr__ (PEP 562)
        if name.startswith("__"):  # the import system asks for __path__, __spec__, ...
            raise AttributeError(name)
        # Whatever else a later pydantic asks the loader for comes from the real one.
        _with_plugins(stand_in)
        return getattr(importlib.import_module(_PLUGIN_LOADER), name)

    vars(stand_in).update(get_plugins=get_plugins, __getattr__=__getattr__)
    sys.modules[_PLUGIN_LOADER] = stand_in
    return stand_in


def _with_plugins(stand_in: types.ModuleType | None) -> None:
    """Take the stand-in loader away (the real one loads when a model next asks for it)."""
    if stand_in is not None and sys.modules.get(_PLUGIN_LOADER) is stand_in:
        del sys.modules[_PLUGIN_LOADER]


_STAND_IN = _without_plugins()

NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"
AXIS_PATTERN = r"^[A-Za-z_][A-Za-z0-9_-]*$"
_DURATION = re.compile(
    r"^(?:(?P<h>\d+(?:\.\d+)?)h)?(?:(?P<m>\d+(?:\.\d+)?)m)?(?:(?P<s>\d+(?:\.\d+)?)s)?$"
)
DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?h)?([0-9]+(\.[0-9]+)?m)?([0-9]+(\.[0-9]+)?s)?$"
_SIZE_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9}
_SIZE_UNITS |= {"kib": 2**10, "mib": 2**20, "gib": 2**30, "k": 10**3, "m": 10**6, "g": 10**9}
_SIZE_UNITS |= {"ki": 2**10, "mi": 2**20, "gi": 2**30}
SIZE_PATTERN = r"^[0-9]+(\.[0-9]+)? *([kKmMgG][iI]?)?[bB]?$"


def describe(value: object) -> str:
    """How a found value is named in messages: ``a string 'x'``, ``a list``, ``null``."""
    match value:
        case None:
            return "null"
        case bool():
            return f"a boolean {str(value).lower()}"
        case int():
            return f"an integer {value}"
        case float():
            return f"a number {value}"
        case str():
            return f"a string {value!r}" if len(value) <= 60 else "a long string"
        case list() | tuple():
            return "a list"
        case Mapping():
            return "a mapping"
        case _:
            return type(value).__name__


def _fail(expected: str, found: object) -> PydanticCustomError:
    return PydanticCustomError(
        "stackmatrix",
        "expected {expected}, found {found}",
        {"expected": expected, "found": describe(found)},
    )


def _scalar(value: object) -> Scalar:
    if isinstance(value, str | int | float | bool):
        return value
    raise _fail("a string, number or boolean", value)


def _scalars(value: object) -> tuple[Scalar, ...]:
    if isinstance(value, list | tuple):
        return tuple(_scalar(item) for item in value)
    return (_scalar(value),)


def _size(value: object) -> int:
    """Bytes: a whole number, or a size like 50MiB, 2GiB, 500kB."""
    number: float | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*", value)
        unit = match[2].lower() if match else ""
        if match and unit in _SIZE_UNITS:
            number = float(match[1]) * _SIZE_UNITS[unit]
    if number is None or number < 1024:
        raise _fail("a size of at least 1KiB, like 50MiB, 2GiB or 500kB", value)
    return int(number)


def _duration(value: object) -> float:
    if isinstance(value, bool):
        raise _fail("a duration like 90s, 10m, 1h or 1m30s", value)
    seconds: float | None = None
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip()
        match = _DURATION.match(text)
        if match and text:
            h, m, s = (float(match[g] or 0) for g in "hms")
            seconds = h * 3600 + m * 60 + s
        else:
            try:
                seconds = float(text)
            except ValueError:
                seconds = None
    if seconds is None or not seconds > 0 or seconds == float("inf"):
        raise _fail("a positive duration like 90s, 10m, 1h or 1m30s", value)
    return seconds


def split_command(text: str) -> list[str]:
    """Split a command line like a POSIX shell, keeping ``{{ ... }}`` templates whole."""
    templates: list[str] = []

    def hide(match: re.Match[str]) -> str:
        templates.append(match[0])
        return f"\0{len(templates) - 1}\0"

    import shlex  # noqa: PLC0415 - loaded for a command written as one string only

    words = shlex.split(TEMPLATE.sub(hide, text))
    return [re.sub(r"\0(\d+)\0", lambda m: templates[int(m[1])], word) for word in words]


def _words(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        try:
            words = split_command(value)
        except ValueError as exc:
            raise PydanticCustomError(
                "stackmatrix", "cannot split the command: {why}", {"why": str(exc)}
            ) from None
    elif isinstance(value, list | tuple):
        for index, word in enumerate(value):
            if isinstance(word, bool) or not isinstance(word, str | int | float):
                raise PydanticCustomError(
                    "stackmatrix",
                    "expected a string as item {index} of the command, found {found}",
                    {"index": index, "found": describe(word)},
                )
        words = [str(w) for w in value]
    else:
        raise _fail("a command: a string or a list of strings", value)
    if not words:
        raise PydanticCustomError("stackmatrix", "the command is empty", {})
    return tuple(words)


def _env_value(value: object) -> str:
    if isinstance(value, str | int | float):  # bool is an int
        return scalar_text(value)
    raise _fail("a string, number or boolean", value)


SCALAR_SCHEMA: dict[str, Any] = {"type": ["string", "number", "boolean"]}
DURATION_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"type": "number", "exclusiveMinimum": 0},
        {"type": "string", "pattern": DURATION_PATTERN, "minLength": 1},
    ],
    "description": "seconds, or a duration like 90s, 10m, 1h, 1m30s",
}
COMMAND_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"type": "string", "minLength": 1},
        {"type": "array", "items": {"type": ["string", "number"]}, "minItems": 1},
    ]
}

MatrixValue = Annotated[Scalar, PlainValidator(_scalar), WithJsonSchema(SCALAR_SCHEMA)]
WhenValue = Annotated[
    tuple[Scalar, ...],
    PlainValidator(_scalars),
    WithJsonSchema({"anyOf": [SCALAR_SCHEMA, {"type": "array", "items": SCALAR_SCHEMA}]}),
]
Duration = Annotated[float, BeforeValidator(_duration), WithJsonSchema(DURATION_SCHEMA)]
SIZE_SCHEMA: dict[str, Any] = {
    "anyOf": [{"type": "integer", "minimum": 1024}, {"type": "string", "pattern": SIZE_PATTERN}]
}
Size = Annotated[int, BeforeValidator(_size), WithJsonSchema(SIZE_SCHEMA)]
Words = Annotated[tuple[str, ...], PlainValidator(_words), WithJsonSchema(COMMAND_SCHEMA)]
EnvValue = Annotated[str, PlainValidator(_env_value), WithJsonSchema(SCALAR_SCHEMA)]
EnvName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=256)]
Port = Annotated[int, Field(ge=1, le=65535)]


class Model(BaseModel):
    """Base of every spec model: immutable, unknown keys rejected."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class ProbeModel(Model):
    """Base of the readiness probes: ``kind`` names one, and its one-value shorthand
    (``{tcp: 6379}``) sets the field named by ``SHORTHAND``."""

    SHORTHAND: ClassVar[str] = "port"


class TcpProbe(ProbeModel):
    """Ready when a TCP connection to the published port succeeds."""

    kind: Literal["tcp"] = "tcp"
    port: Port


class HttpProbe(ProbeModel):
    """Ready when an HTTP GET answers (any status below 500, or exactly ``status``)."""

    kind: Literal["http"] = "http"
    port: Port
    path: str = Field("/", pattern=r"^/")
    status: int | None = Field(None, ge=100, le=599)


class PostgresProbe(ProbeModel):
    """Ready when PostgreSQL accepts a connection and answers a query."""

    kind: Literal["postgres"] = "postgres"
    port: Port
    user: str = "postgres"
    database: str = "postgres"


class RedisProbe(ProbeModel):
    """Ready when Redis answers PING."""

    kind: Literal["redis"] = "redis"
    port: Port


def _regex(value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise PydanticCustomError(
            "stackmatrix", "invalid regular expression: {why}", {"why": str(exc)}
        ) from None
    return value


class LogProbe(ProbeModel):
    """Ready when the service's log contains a line matching ``pattern``."""

    SHORTHAND: ClassVar[str] = "pattern"
    kind: Literal["log"] = "log"
    pattern: str

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        return _regex(value)


class CommandProbe(ProbeModel):
    """Ready when the command exits 0 inside the service (``compose exec``)."""

    SHORTHAND: ClassVar[str] = "command"
    kind: Literal["command"] = "command"
    command: Words


Probe = Annotated[
    TcpProbe | HttpProbe | PostgresProbe | RedisProbe | LogProbe | CommandProbe,
    Field(discriminator="kind"),
]
# Derived from the union above: a new probe kind is one model added to it (and its attempt in
# stackmatrix.engine.probes, which mypy holds to every member of the union).
PROBE_KINDS: dict[str, type[ProbeModel]] = {
    model.model_fields["kind"].default: model for model in get_args(get_args(Probe)[0])
}
# The key a probe's scalar shorthand ({tcp: 6379}) sets.
PROBE_SHORTHAND = {kind: model.SHORTHAND for kind, model in PROBE_KINDS.items()}


def _probe_schema() -> dict[str, Any]:
    variants = []
    for kind, model in PROBE_KINDS.items():
        params = model.model_json_schema()
        params["properties"].pop("kind", None)
        params.pop("title", None)
        short = params["properties"][PROBE_SHORTHAND[kind]]
        variants.append(
            {
                "type": "object",
                "properties": {kind: {"anyOf": [short, params]}},
                "required": [kind],
                "additionalProperties": False,
                "description": (model.__doc__ or "").strip(),
            }
        )
    probe = {"oneOf": variants}
    return {
        "type": "object",
        "additionalProperties": {"anyOf": [probe, {"type": "array", "items": probe}]},
        "description": "readiness probes per service: one probe or a list",
    }


class _YamlShapeOfReady:
    """JSON Schema of ``ready`` as written in YAML (shorthands), built only when asked for."""

    def __get_pydantic_json_schema__(
        self, _schema: CoreSchema, _handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return _probe_schema()


Ready = Annotated[dict[str, tuple[Probe, ...]], _YamlShapeOfReady()]


class VersionQuery(Model):
    """How to ask a service its version: a command run inside it (the first non-empty line
    it prints, or what ``match`` finds there), or a regular expression over its log (its
    group 1, or the whole match)."""

    command: Words | None = None
    match: str | None = None
    log: str | None = None

    @field_validator("match", "log")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        return None if value is None else _regex(value)

    @model_validator(mode="after")
    def _one_way(self) -> "VersionQuery":
        if (self.command is None) == (self.log is None):
            found = "both" if self.command is not None else "neither"
            raise PydanticCustomError(
                "stackmatrix", "expected one of 'command' or 'log', found {found}", {"found": found}
            )
        if self.match is not None and self.command is None:
            raise PydanticCustomError(
                "stackmatrix",
                "'match' reads the output of a 'command'; a 'log' pattern is its own match",
                {},
            )
        return self


def _command_value(value: object, *, shell: bool) -> tuple[str, ...] | str:
    """A command as run: words, or one command line for ``sh -c`` when *shell*."""
    if shell:
        if isinstance(value, str) and value.strip():
            return value
        import shlex  # noqa: PLC0415

        return shlex.join(_words(value))
    return _words(value)


SETUP_TIMEOUT = 600.0  # seconds a setup step may take when it gives no timeout


class SetupStep(Model):
    """A command run after the stack is ready and before the tests (migrations, schemas,
    extensions): on the host or in a service, with the tests' environment."""

    shell: bool = False
    command: Annotated[tuple[str, ...] | str, WithJsonSchema(COMMAND_SCHEMA)]
    env: dict[str, EnvValue] = Field(default_factory=dict)
    where: str = "host"
    timeout: Duration = SETUP_TIMEOUT

    @field_validator("command", mode="plain")
    @classmethod
    def _command(cls, value: object, info: ValidationInfo) -> tuple[str, ...] | str:
        return _command_value(value, shell=bool(info.data.get("shell")))


def _one_or_many(value: object) -> object:
    return [value] if isinstance(value, Mapping) else value


class TestsSpec(Model):
    """How the test suite runs against a variant's stack."""

    __test__ = False  # not a pytest test class

    shell: bool = False
    command: Annotated[tuple[str, ...] | str, WithJsonSchema(COMMAND_SCHEMA)]
    # The command `run --failed-tests` runs instead, its `${{ failed }}` the testcases to run.
    rerun: Annotated[tuple[str, ...] | str | None, WithJsonSchema(COMMAND_SCHEMA)] = None
    env: dict[str, EnvValue] = Field(default_factory=dict)
    where: str = "host"
    timeout: Duration | None = None
    workdir: Path = Path()
    # One step or a list, run in order after readiness and before the tests.
    setup: Annotated[tuple[SetupStep, ...], BeforeValidator(_one_or_many)] = ()
    # Prints the versions of the packages under test (``NAME==VERSION`` or ``NAME VERSION``
    # lines), run where the tests run; recorded in each variant's provenance.
    versions: Words | None = None

    @field_validator("command", "rerun", mode="plain")
    @classmethod
    def _command(cls, value: object, info: ValidationInfo) -> tuple[str, ...] | str | None:
        if value is None and info.field_name == "rerun":
            return None
        return _command_value(value, shell=bool(info.data.get("shell")))


class RunOptions(Model):
    """Scheduling and timeouts of a run."""

    jobs: int | None = Field(None, ge=1)
    # Stacks that may be coming down in the background beside the `jobs` running variants;
    # unset: as many as `jobs`, within 24 networks of the stacks alive at once (at least 1);
    # 0: each variant is down before the next comes up.
    background_downs: int | None = Field(None, ge=0)
    fail_fast: bool = False
    up_timeout: Duration = 120.0
    ready_timeout: Duration = 60.0
    down_timeout: Duration = 10.0
    stats_interval: Duration = 1.0
    # How much of each service's log a variant keeps: its head and its tail, the middle cut.
    log_cap: Size = 50 * 2**20
    # The longest any one engine call may go unanswered (inspect, logs, down, ...); unset:
    # $STACKMATRIX_ENGINE_TIMEOUT seconds, else 60.
    engine_timeout: Duration | None = None
    # Compose profiles turned on for every variant (overlays add their own).
    compose_profiles: tuple[str, ...] = ()
    # When the prepare stage pulls an image, as compose's pull_policy: missing, always, never.
    pull: Literal["missing", "always", "never"] = "missing"


class TestIdRewrite(Model):
    """A substitution applied to every test id (``CLASSNAME::NAME``) before results are
    compared across variants, e.g. to drop a backend name a suite puts in its class names."""

    __test__ = False  # not a pytest test class

    pattern: str
    replace: str = ""

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        return _regex(value)


class ReportOptions(Model):
    """How results are compared and shown."""

    # Applied in order, as re.sub does, to every test id.
    test_ids: tuple[TestIdRewrite, ...] = ()


class Overlay(Model):
    """A compose fragment merged into the variants whose values match ``when``."""

    when: dict[str, WhenValue] = Field(default_factory=dict)
    compose: dict[str, Any] = Field(default_factory=dict)
    # Compose profiles this overlay turns on: their services come up and are waited for.
    compose_profiles: tuple[str, ...] = ()


MatrixEntry = dict[str, MatrixValue]


class ProfileExtension(Model):
    """What a profile appends: axis values, exclude and include entries."""

    axes: dict[str, list[MatrixValue]] = Field(default_factory=dict)
    exclude: tuple[MatrixEntry, ...] = ()
    include: tuple[MatrixEntry, ...] = ()


class Profile(Model):
    """A named variation of the matrix (e.g. ``nightly``): replaces, then extends."""

    axes: dict[str, list[MatrixValue]] | None = None
    exclude: tuple[MatrixEntry, ...] | None = None
    include: tuple[MatrixEntry, ...] | None = None
    extend: ProfileExtension | None = None
    run: RunOptions | None = None


def _resolve(base: Path, value: object) -> object:
    if isinstance(value, str) and value and not value.startswith("$"):
        return os.path.normpath(base / Path(value).expanduser())
    return value


class Spec(Model):
    """A validated matrix file. Paths are absolute."""

    path: SkipJsonSchema[Path]
    profile: SkipJsonSchema[str | None] = None
    name: str = Field(pattern=NAME_PATTERN, max_length=30)
    compose: Annotated[
        tuple[Path, ...],
        WithJsonSchema(
            {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}
        ),
    ] = ()
    axes: dict[str, list[MatrixValue]] = Field(default_factory=dict)
    exclude: tuple[MatrixEntry, ...] = ()
    include: tuple[MatrixEntry, ...] = ()
    overlays: tuple[Overlay, ...] = ()
    ready: Ready = Field(default_factory=dict)
    # How to ask a service its version, beside (or instead of) what its probe reads.
    versions: dict[str, VersionQuery] = Field(default_factory=dict)
    tests: TestsSpec
    run: RunOptions = RunOptions()
    report: ReportOptions = ReportOptions()
    profiles: dict[str, Profile] = Field(default_factory=dict)
    # Variables whose values are secret besides those with secret-looking names (PASSWORD,
    # TOKEN, KEY, ...): masked in logs and reports, kept off command lines.
    secrets: tuple[EnvName, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _absolute_paths(cls, data: Any) -> Any:
        if not isinstance(data, Mapping) or not isinstance(data.get("path"), str | Path):
            return data
        base = Path(data["path"]).parent
        out = dict(data)
        compose = out.get("compose")
        if isinstance(compose, str):
            compose = [compose]
        if isinstance(compose, list):
            out["compose"] = [_resolve(base, item) for item in compose]
        tests = out.get("tests")
        if isinstance(tests, Mapping):
            tests = dict(tests)
            tests["workdir"] = _resolve(base, tests.get("workdir") or ".")
            out["tests"] = tests
        return out

    @property
    def matrix_keys(self) -> tuple[str, ...]:
        """Every matrix key: the axes, then keys that only include entries add."""
        keys = dict.fromkeys(self.axes)
        for entry in self.include:
            keys.update(dict.fromkeys(entry))
        return tuple(keys)


_with_plugins(_STAND_IN)
