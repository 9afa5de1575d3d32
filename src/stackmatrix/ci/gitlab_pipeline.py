"""The GitLab CI child pipeline: one job per variant (or per shard of them), then a report job
that merges every job's run directory into one report and publishes its JUnit.

The parent pipeline writes it with ``stackmatrix gitlab-matrix -o FILE`` and starts it with
``trigger: include: artifact:`` (docs/gitlab.md). GitLab groups a pipeline's test report by
job and keeps one testcase per classname and name within it; the merged JUnit carries the
variant in the classname (``[postgres-13] tests.test_orders``), so no variant hides another.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from stackmatrix import __version__
from stackmatrix.ci.shards import suggested_shards
from stackmatrix.errors import UsageError
from stackmatrix.matrix.expand import Variant
from stackmatrix.matrix.select import select_shard

MAX_JOBS = 200
"""The most jobs a generated child pipeline has, the report job included. stackmatrix's own
cap: the pipeline is plain jobs, not ``parallel:matrix`` (which GitLab caps at 200 jobs);
GitLab's own limit on the jobs of one pipeline is set per instance and plan (its "maximum
number of jobs in a single pipeline"), and may be lower or higher."""

OUT = ".stackmatrix-ci"
"""Where each job's ``stackmatrix run`` writes (relative to the project directory)."""

REPORT = "stackmatrix-report"
"""Where the report job writes the merged report."""

VARIANTS_STAGE = "stackmatrix-variants"
REPORT_STAGE = "stackmatrix-report"
REPORT_JOB = "stackmatrix report"


@dataclass(frozen=True)
class PipelineOptions:
    """How the jobs are set up: the matrix file and profile they run, the image, runner tags,
    how stackmatrix is installed and what runs before it, and what fails the report job."""

    file: str = "matrix.yaml"
    profile: str | None = None
    image: str | None = None
    tags: tuple[str, ...] = ()
    install: str = f"python3 -m pip install stackmatrix=={__version__}"
    setup: str | None = None
    # What fails the report job (``stackmatrix report --fail-on``); empty: nothing does.
    fail_on: tuple[str, ...] = ("incomplete",)


def gitlab_pipeline(
    variants: Sequence[Variant], options: PipelineOptions, *, shards: int | None = None
) -> dict[str, Any]:
    """The child pipeline as a mapping, ready for YAML: the stages, a hidden ``.stackmatrix``
    job the others extend, one job per variant or per non-empty shard ``I/N``, and the report.

    Raises UsageError for an empty matrix, ``shards`` below 1, or more than :data:`MAX_JOBS`.
    """
    if shards is not None and shards < 1:
        raise UsageError(f"--shards {shards}: expected a number of shards of at least 1")
    if not variants:
        raise UsageError("the matrix has no variants: there is no pipeline to write")
    most = MAX_JOBS - 1  # and the report job
    if shards is None and len(variants) > most:
        raise UsageError(
            f"the matrix has {len(variants)} variants: one job each and the report job would be"
            f" {len(variants) + 1} jobs, more than the {MAX_JOBS} stackmatrix puts in one"
            f" child pipeline; group them into jobs with --shards N (N up to {most}, e.g. --shards"
            f" {suggested_shards(len(variants), most)})"
        )
    if shards is not None and min(shards, len(variants)) > most:
        raise UsageError(
            f"--shards {shards}: with the report job that is more than the {MAX_JOBS} jobs"
            f" stackmatrix puts in one child pipeline; use --shards {most} or fewer"
        )
    pipeline: dict[str, Any] = {
        "stages": [VARIANTS_STAGE, REPORT_STAGE],
        ".stackmatrix": _template(options),
    }
    if shards is None:
        for variant in variants:
            pipeline[f"stackmatrix {variant.id}"] = _run_job(
                options, ["--only", variant.id], experimental=variant.experimental
            )
    else:
        count = min(shards, len(variants))
        for index in range(1, count + 1):
            members = select_shard(variants, f"{index}/{count}")
            pipeline[f"stackmatrix shard {index} of {count}"] = _run_job(
                options,
                ["--shard", f"{index}/{count}"],
                experimental=all(v.experimental for v in members),
            )
    pipeline[REPORT_JOB] = _report_job(options)
    return pipeline


def gitlab_pipeline_yaml(
    variants: Sequence[Variant], options: PipelineOptions, *, shards: int | None = None
) -> str:
    """:func:`gitlab_pipeline` as YAML, with a comment saying what it runs."""
    pipeline = gitlab_pipeline(variants, options, shards=shards)
    jobs = len([key for key in pipeline if key not in ("stages", ".stackmatrix")])
    profile = f", profile {options.profile}" if options.profile else ""
    head = (
        f"# Written by stackmatrix {__version__} gitlab-matrix: {len(variants)} variants of"
        f" {options.file}{profile} in {jobs - 1} jobs, then {REPORT_JOB!r}.\n"
    )
    return head + yaml.safe_dump(pipeline, sort_keys=False, width=100, allow_unicode=True)


def _template(options: PipelineOptions) -> dict[str, Any]:
    job: dict[str, Any] = {}
    if options.image:
        job["image"] = options.image
    if options.tags:
        job["tags"] = list(options.tags)
    job["before_script"] = [options.install, *([options.setup] if options.setup else [])]
    return job


def _spec_words(options: PipelineOptions) -> list[str]:
    words = ["--file", options.file]
    if options.profile:
        words += ["--profile", options.profile]
    return words


def _run_job(
    options: PipelineOptions, selection: list[str], *, experimental: bool
) -> dict[str, Any]:
    command = ["stackmatrix", "run", *_spec_words(options), *selection, "--out", OUT]
    job: dict[str, Any] = {
        "extends": ".stackmatrix",
        "stage": VARIANTS_STAGE,
        "script": [shlex.join(command)],
        "artifacts": {
            "when": "always",
            # `latest` is a link to the run directory: uploading it would store the run twice.
            "paths": [f"{OUT}/runs/"],
            "exclude": [f"{OUT}/runs/latest"],
            "expire_in": "14 days",
        },
    }
    if experimental:
        # A job made only of experimental variants may fail without failing the pipeline.
        job["allow_failure"] = True
    return job


def _report_job(options: PipelineOptions) -> dict[str, Any]:
    return {
        "extends": ".stackmatrix",
        "stage": REPORT_STAGE,
        # Merging needs stackmatrix only: no engine, no setup.
        "before_script": [options.install],
        "when": "always",
        "script": [
            f"set -- {OUT}/runs/*/",
            f'if [ ! -d "$1" ]; then echo "no job left a run directory in {OUT}/runs" >&2;'
            " exit 1; fi",
            f'stackmatrix report "$@" --out {REPORT}'
            + (f" --fail-on {','.join(options.fail_on)}" if options.fail_on else ""),
        ],
        "artifacts": {
            "when": "always",
            "paths": [f"{REPORT}/"],
            "reports": {"junit": f"{REPORT}/junit.xml"},
            "expire_in": "30 days",
        },
    }
