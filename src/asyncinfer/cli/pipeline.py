"""The commands that work on a stack that is up, local or deployed: submit, watch, jobs, redrive."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.table import Table

from asyncinfer import job_records, job_results, uploads
from asyncinfer.cli.app import errors, key_values, target_of
from asyncinfer.cli.display import (
    console,
    endpoint_line_of,
    follow_showing_progress,
    summary_table,
    upload_items_showing_progress,
    wait_showing_progress,
)


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--prefix", default="", help="Key prefix in the input bucket.")
@click.option(
    "--metadata",
    "metadata",
    multiple=True,
    metavar="KEY=VALUE",
    help="User metadata (x-amz-meta-KEY) for every file; returned in its result event. custom-attributes=VALUE "
    "is also sent to the model as CustomAttributes.",
)
@click.option("--wait", is_flag=True, help="Wait for these files' results (from the jobs table; the queue is left).")
@click.option("--timeout", default=900.0, show_default=True, help="With --wait: give up after this many seconds.")
@click.option(
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="With --wait: download each output into this folder, named after its input file (+ .out).",
)
@click.pass_context
def submit(
    ctx: click.Context,
    paths: tuple[Path, ...],
    prefix: str,
    metadata: tuple[str, ...],
    wait: bool,
    timeout: float,
    output: Path | None,
) -> None:
    """Upload files and folders to the input bucket; with --wait, print each file's result as it arrives.

    With --wait the exit status is 0 only if every file COMPLETED (and, with --output, was downloaded), 1 if one
    COMPLETED but could not be downloaded, 3 if one FAILED, 4 if one had no result within --timeout."""
    if output is not None and not wait:
        raise click.UsageError("--output needs --wait")
    with errors():
        meta = key_values(metadata, "--metadata")
        uploads.check_metadata(meta)  # refused before anything is uploaded, stack or not
        items = uploads.collect(list(paths), prefix, meta)
        stack = target_of(ctx)
        uploads.check_triggers(items, stack.parameters)
        done = upload_items_showing_progress(stack, items)
        console.print(f"uploaded {len(done)} file(s) to s3://{stack.outputs['InputBucketName']}/{prefix}")
        if not wait:
            return
        result = wait_showing_progress(stack, done, prefix, timeout, output)
    completed, failed = len(result.finished) - len(result.failed), len(result.failed)
    unsaved = f", {len(result.unsaved)} output(s) not downloaded" if result.unsaved else ""
    console.print(
        f"{completed} completed, {failed} failed, {len(result.waiting)} without a result after {timeout:g} s{unsaved}"
    )
    ctx.exit(int(result.exit_code))


@click.command()
@click.option("--expect", type=int, default=None, help="Stop after this many result events.")
@click.option("--timeout", default=60.0, show_default=True, help="Stop after this many seconds without an event.")
@click.pass_context
def watch(ctx: click.Context, expect: int | None, timeout: float) -> None:
    """Follow result events from the results queue (consumes them), below the endpoint's status line."""
    with errors():
        stack = target_of(ctx)
        summary, _ = follow_showing_progress(stack, expect, timeout, endpoint_line=endpoint_line_of(stack))
        console.print(summary_table(summary, "results"))


@click.command()
@click.option("--status", type=click.Choice(["SUBMITTING", "SUBMITTED", "COMPLETED", "FAILED"]), default=None)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.option("--limit", type=int, default=None)
@click.pass_context
def jobs(ctx: click.Context, status: str | None, as_json: bool, limit: int | None) -> None:
    """List job records."""
    with errors():
        found = job_records.list_jobs(target_of(ctx), status, limit)
    if as_json:
        for job in found:
            click.echo(json.dumps({k: v for k, v in job.to_plain().items() if v is not None}, default=str))
        return
    table = Table(title=f"{len(found)} job(s)")
    for column in ("inference id", "status", "input", "completed", "ms", "reason / output"):
        table.add_column(column, overflow="fold")
    for job in found:
        detail = job.failure_reason if job.status == "FAILED" else job.output_location
        table.add_row(
            job.inference_id[:12],
            str(job.status),
            (job.input_location or "").split("/", 3)[-1],
            job.completed_time or "",
            str(job.duration_ms or ""),
            detail or "",
        )
    console.print(table)


@click.command()
@click.option("--dry-run", is_flag=True, help="Say what would be redriven; change nothing.")
@click.option("--jobs", "do_jobs", is_flag=True, help="Also re-submit FAILED jobs (all of them, or those of --reason).")
@click.option("--dead-letters/--no-dead-letters", "do_dead_letters", default=True, help="Replay the dead-letter queue.")
@click.option("--reason", default=None, help="Re-submit the FAILED jobs whose failure reason contains this text.")
@click.option("--limit", type=int, default=None, help="At most this many of each.")
@click.pass_context
def redrive(
    ctx: click.Context, dry_run: bool, do_jobs: bool, do_dead_letters: bool, reason: str | None, limit: int | None
) -> None:
    """Replay dead-letter messages where they failed and, with --jobs or --reason, re-submit FAILED jobs
    (idempotent)."""
    from asyncinfer import redrive as redriving

    # FAILED jobs are results: re-submitting them is a choice (a file the model refuses fails again), never a default.
    do_jobs = do_jobs or reason is not None
    with errors():
        stack = target_of(ctx)
        actions = []
        if do_jobs:
            actions += [
                redriving.redrive_job(stack, job, dry_run) for job in redriving.redrivable_jobs(stack, reason, limit)
            ]
        if do_dead_letters:
            actions += redriving.replay_dead_letters(stack, dry_run, limit)
    table = Table(title=("dry run: " if dry_run else "") + f"{len(actions)} item(s)")
    for column in ("from", "subject", "outcome", "reason"):
        table.add_column(column, overflow="fold")
    for action in actions:
        table.add_row(action.source, action.subject[:24], action.outcome, job_results.cut(action.reason, 90))
    console.print(table)
