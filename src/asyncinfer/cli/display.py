"""What the commands print: the console, progress bars around uploads and result following, and the tables."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from async_pipeline.jobs import Job, JobStatus
from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from asyncinfer import job_results, job_waits, target, uploads
from asyncinfer.result_summary import Summary
from asyncinfer.results import Received, ResultFollower, follow

if TYPE_CHECKING:
    from asyncinfer.local.stack import RunningStack
    from asyncinfer.soak import Audit

console = Console(stderr=False)


def progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    )


def upload_items_showing_progress(stack: target.Target, items: list[uploads.Upload]) -> list[uploads.Upload]:
    with progress() as bar:
        task = bar.add_task("uploading", total=len(items))
        return uploads.upload(stack, items, lambda _: bar.advance(task))


class EndpointLine:
    """A line of text kept up to date from ``read`` every ``interval`` seconds, on a thread of its own (a failed
    read shows its error: the line informs, it never stops what it is shown above)."""

    def __init__(self, read: Callable[[], str], interval: float = 3.0) -> None:
        self.text = Text("endpoint: …", style="cyan")
        self._read = read
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="endpoint-line", daemon=True)

    def _run(self) -> None:
        while True:
            try:
                self.text.plain = self._read()
            except Exception as exc:
                self.text.plain = f"endpoint: unknown ({type(exc).__name__}: {exc})"[:200]
            if self._stop.wait(self._interval):
                return

    def __enter__(self) -> EndpointLine:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(5)


def endpoint_line_of(stack: target.Target) -> Callable[[], str]:
    """The endpoint's one-line status (asyncinfer.endpoint_status), read from the stack's AWS APIs."""
    from asyncinfer import endpoint_status

    return lambda: endpoint_status.endpoint_line(endpoint_status.gather(stack, jobs=False, alarms=False))


def follow_showing_progress(
    stack: target.Target,
    expect: int | None,
    timeout: float,
    uploaded: Mapping[str, float] | None = None,
    show: bool = True,
    endpoint_line: Callable[[], str] | None = None,
) -> tuple[Summary, list[Received]]:
    """:func:`asyncinfer.results.follow` with a progress bar; ``show`` (without ``expect``) prints each event;
    ``endpoint_line`` (e.g. :func:`endpoint_line_of`): a line above the bar, refreshed every few seconds."""
    follower = ResultFollower(stack)
    with contextlib.ExitStack() as stacked:
        bar = progress()
        if endpoint_line is None:
            stacked.enter_context(bar)
        else:
            line = stacked.enter_context(EndpointLine(endpoint_line))
            stacked.enter_context(Live(Group(line.text, bar), console=console, refresh_per_second=4))
        task = bar.add_task("results", total=expect)

        def on_result(item: Received, summary: Summary) -> None:
            bar.update(
                task,
                advance=1,
                description=f"results: [green]{summary.completed} completed[/] [red]{summary.failed} failed[/]",
            )
            if show and expect is None:
                bar.console.print(f"{item.status:9} {item.event.detail['inferenceId'][:12]} {item.input_key}")

        return follow(follower, expect, timeout, uploaded, on_result)


def result_line(stack: target.Target, job: Job, name: str, saved: Path | None = None) -> str:
    """One finished job as ``submit --wait`` prints it: status, file, the prediction itself or the whole reason."""
    if job.status is JobStatus.COMPLETED:
        data, source = job_results.prediction(
            stack.client("s3"), job.response_content, job.response_encoding, job.output_location
        )
        answer = job_results.shown(data) if data is not None else f"({source})"
        line = f"[green]COMPLETED[/] {name}  [bold]{answer}[/]  {job.output_location}"
        return line + (f"  → {saved}" if saved is not None else "")
    return f"[red]FAILED[/]    {name}  {job.failure_reason or 'unknown'}"


def wait_showing_progress(
    stack: target.Target, done: list[uploads.Upload], prefix: str, timeout: float, output: Path | None
) -> job_waits.WaitResult:
    """Wait for these uploads' jobs with a progress bar, printing each result as it arrives; with ``output``,
    download each completed output there, named after its input file."""
    bucket = stack.outputs["InputBucketName"]
    from botocore.exceptions import BotoCoreError, ClientError
    from rich.markup import escape

    by_id = {item.inference_id(bucket): item for item in done}
    unsaved: dict[str, str] = {}
    with progress() as bar:
        task = bar.add_task("results", total=len(by_id))

        def on_result(job: Job) -> None:
            item = by_id[job.inference_id]
            saved = None
            if output is not None and job.status is JobStatus.COMPLETED and job.output_location:
                try:
                    saved = job_results.download(
                        stack.client("s3"), job.output_location, output / job_results.local_name(item.key, prefix)
                    )
                except (ClientError, BotoCoreError, OSError) as exc:  # this file's, not the wait's: go on
                    unsaved[job.inference_id] = f"{type(exc).__name__}: {exc}"
            line = result_line(stack, job, item.key, saved)
            if job.inference_id in unsaved:
                line += f"  [red]not downloaded: {escape(unsaved[job.inference_id])}[/]"
            bar.console.print(line, soft_wrap=True, highlight=False)
            bar.advance(task)

        result = job_waits.wait(stack, list(by_id), timeout, on_result)
    result.unsaved = unsaved
    return result


def stack_table(running: RunningStack) -> Table:
    assert running.stack is not None
    table = Table(title=f"local stack {running.stack.stack_name}", show_header=False)
    table.add_row("AWS APIs (AWS_ENDPOINT_URL)", running.aws_endpoint_url)
    table.add_row("sagemaker-runtime", running.sagemaker_runtime_url)
    table.add_row("model container", running.container_url)
    if running.faults is not None:
        table.add_row("fault injection", running.faults.plan.describe() + f" (seed {running.faults.plan.seed})")
    for key, value in running.stack.outputs.items():
        table.add_row(key, value)
    return table


def summary_table(summary: Summary, title: str) -> Table:
    figures = summary.as_dict()
    table = Table(title=title, show_header=False)
    table.add_row("completed", str(summary.completed))
    table.add_row("failed", str(summary.failed))
    for reason, count in sorted(summary.reasons.items(), key=lambda kv: -kv[1]):
        table.add_row(f"  {count} x", reason)  # whole: the column folds
    for key, label in (("latencyP50Seconds", "latency p50"), ("latencyP95Seconds", "latency p95")):
        if figures[key] is not None:
            table.add_row(label, f"{figures[key]:.2f} s (upload → result event)")
    if figures["throughputFilesPerSecond"] is not None:
        table.add_row("throughput", f"{figures['throughputFilesPerSecond']:.1f} files/s")
    return table


def results_table(stack: target.Target, received: list[Received], prefix: str = "") -> Table:
    """Every result: the file, what came back of its metadata, the prediction itself (embedded response, else the
    output object's first bytes) and where its output is named after it, or the whole failure reason (folded,
    never cut)."""
    s3 = stack.client("s3")
    table = Table(title="every result")
    for column in ("file", "status", "ms", "metadata", "prediction / reason", "output"):
        table.add_column(column, overflow="fold")
    for item in sorted(received, key=lambda r: r.input_key):
        detail = item.event.detail
        metadata = item.event.metadata
        shown_metadata = (
            ", ".join(f"{k}={job_results.cut(v, 24)}" for k, v in sorted(metadata.items())) if metadata else ""
        )
        if item.status == "COMPLETED":
            response = detail.get("inferenceResponse") or {}
            data, source = job_results.prediction(
                s3, response.get("content"), response.get("encoding"), detail.get("outputLocation")
            )
            outcome = f"[green]{job_results.shown(data, 60)}[/]" if data is not None else f"({source})"
            location = str(detail.get("outputLocation") or "")
            output = location.split("/output/", 1)[-1]  # the input's folder and the id-derived name
        else:
            outcome, output = f"[red]{detail.get('failureReason') or 'unknown'}[/]", ""
        table.add_row(
            item.input_key.removeprefix(prefix),
            item.status,
            str(detail.get("durationMs") or ""),
            shown_metadata,
            outcome,
            output,
        )
    return table


def soak_table(result: Audit) -> Table:
    from asyncinfer.soak import fault_rows

    table = Table(title=f"soak: {result.uploaded} files (seed {result.seed})", show_header=False)
    table.add_column("what", max_width=90)
    table.add_column("count", justify="right", overflow="fold")
    table.add_row("faults", result.faults)

    def bad(value: int) -> str:
        return f"[red]{value}[/]" if value else f"[green]{value}[/]"

    table.add_row("inputs (object versions)", str(result.inputs))
    table.add_row("terminal jobs", f"{result.terminal_jobs} ({result.completed} completed, {result.failed} failed)")
    table.add_row("open jobs", str(result.open_jobs))
    table.add_row("result events", str(result.result_events))
    table.add_row("duplicates (inputs with > 1 event)", bad(result.duplicates))
    table.add_row("lost", bad(result.lost))
    table.add_row("contradictions (event vs job)", bad(result.contradictions))
    table.add_row("dangling locations", bad(result.dangling))
    if result.dangling_explained:
        table.add_row(
            "  inputs whose failure object the endpoint could not write (reason says so)",
            str(result.dangling_explained),
        )
    table.add_row(
        f"wrong inputs (not the version's own bytes; {result.outputs_checked} outputs checked)",
        bad(result.wrong_inputs),
    )
    table.add_row("dead-letter entries", str(result.dead_letter_entries))
    for reason, count in result.dead_letter_reasons.items():
        table.add_row(f"  {job_results.cut(reason, 110)}", str(count))
    table.add_row("inputs accounted for by a dead letter only", str(result.dead_lettered_inputs))
    table.add_row(
        "orphan outputs (no job points to them)",
        f"{result.orphan_outputs} + {result.orphan_failure_objects} failure objects",
    )
    shown: dict[str, int] = {}
    for reason, count in result.failure_reasons.items():
        short = job_results.cut(reason, 80)
        shown[short] = shown.get(short, 0) + count
    for reason, count in sorted(shown.items(), key=lambda kv: -kv[1])[:10]:
        table.add_row(f"  failed: {reason}", str(count))
    table.add_row(
        "throughput", f"{result.throughput_files_per_second:.1f} files/s over {result.processing_seconds:.0f} s"
    )
    if result.latency_p50_seconds is not None:
        table.add_row("latency p50 / p95", f"{result.latency_p50_seconds:.1f} s / {result.latency_p95_seconds:.1f} s")
    table.add_row("duration (stack start to audit)", f"{result.duration_seconds:.0f} s")
    for name, text in fault_rows(result.fault_counts):
        table.add_row(f"fault {name}" if not name.startswith(" ") else name, text)
    return table
