"""asyncinfer: run the pipeline locally, drop files into it, and follow what comes out.

Every command works on the local stack by default and on a deployed stack with ``--stack-name``, through the
same code (see target.py). Expected failures print one line and exit 1; they never print a traceback.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from asyncinfer import job_records, target, uploads
from asyncinfer.local.stack import LocalConfig, RunningStack, StackError, read_state
from asyncinfer.results import Received, ResultFollower, Summary

console = Console(stderr=False)
STATE_DIR_ENV = "ASYNCINFER_STATE_DIR"


def _project_root() -> Path:
    """The folder holding template.yaml: the current one or a parent of it, else this package's checkout."""
    for folder in (Path.cwd(), *Path.cwd().parents):
        if (folder / "template.yaml").exists():
            return folder
    return Path(__file__).resolve().parents[2]


def _state_dir() -> Path:
    return Path(os.environ.get(STATE_DIR_ENV) or _project_root() / ".asyncinfer")


@contextmanager
def _errors() -> Iterator[None]:
    """Known failures become one line on stderr and exit status 1."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except (StackError, uploads.MissingPath) as exc:
        raise click.ClickException(str(exc)) from None
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise click.ClickException(f"{error.get('Code')}: {error.get('Message')}") from None
    except BotoCoreError as exc:
        raise click.ClickException(f"cannot reach the stack's AWS APIs: {exc}") from None


def _target(ctx: click.Context) -> target.Target:
    return target.resolve(ctx.obj["stack_name"], ctx.obj["region"], _state_dir())


@click.group()
@click.option(
    "--stack-name", default=None, help="Work on this deployed stack (CloudFormation outputs) instead of the local one."
)
@click.option("--region", default=None, help="AWS region of --stack-name (default: your AWS configuration).")
@click.pass_context
def main(ctx: click.Context, stack_name: str | None, region: str | None) -> None:
    """Drop-a-file pipeline on a SageMaker asynchronous endpoint."""
    ctx.obj = {"stack_name": stack_name, "region": region}


# --- local stack ------------------------------------------------------------------------------------------------


@main.group()
def local() -> None:
    """Run the stack on this machine (no AWS account, no Docker)."""


def _config(port: int, parameters: tuple[str, ...], container_url: str | None, concurrency: int) -> LocalConfig:
    overrides = {}
    for item in parameters:
        key, sep, value = item.partition("=")
        if not sep:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--parameter")
        overrides[key] = value
    return LocalConfig(
        root=_project_root(),
        state_dir=_state_dir(),
        aws_port=port,
        sagemaker_port=port + 1,
        model_port=port + 2,
        parameters=overrides,
        container_url=container_url,
        concurrency=concurrency,
    )


def _print_stack(running: RunningStack) -> None:
    assert running.stack is not None
    table = Table(title=f"local stack {running.stack.stack_name}", show_header=False)
    table.add_row("AWS APIs (AWS_ENDPOINT_URL)", running.aws_endpoint_url)
    table.add_row("sagemaker-runtime", running.sagemaker_runtime_url)
    table.add_row("model container", running.container_url)
    for key, value in running.stack.outputs.items():
        table.add_row(key, value)
    console.print(table)


_local_options = [
    click.option(
        "--port",
        default=4599,
        show_default=True,
        help="AWS APIs on PORT, sagemaker-runtime on PORT+1, model on PORT+2.",
    ),
    click.option("--parameter", "parameters", multiple=True, metavar="KEY=VALUE", help="Template parameter override."),
    click.option(
        "--container-url",
        default=None,
        help="Use this model container (e.g. your image under Docker) instead of the built-in one.",
    ),
    click.option("--concurrency", default=4, show_default=True, help="Execution environments per function."),
]


def _with_local_options(func: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(_local_options):
        func = option(func)
    return func


@local.command("up")
@_with_local_options
@click.option("--detach", is_flag=True, help="Run in the background; stop it with `asyncinfer local down`.")
def local_up(port: int, parameters: tuple[str, ...], container_url: str | None, concurrency: int, detach: bool) -> None:
    """Start the local stack (foreground until Ctrl-C, or --detach)."""
    config = _config(port, parameters, container_url, concurrency)
    with _errors():
        if config.state_file.exists():
            state = read_state(config.state_dir)
            if _alive(int(state.get("pid", 0))):
                raise StackError(
                    f"a local stack is already up (pid {state['pid']}); stop it with: asyncinfer local down"
                )
            config.state_file.unlink()
        if detach:
            _detach(config, sys.argv[1:])
            return
        running = RunningStack(config)
        stopping = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stopping.set())
        with console.status("starting the local stack…"):
            running.start()
        try:
            _print_stack(running)
            console.print(f"state in {config.state_file}; Ctrl-C stops the stack")
            stopping.wait()
        finally:
            with console.status("stopping…"):
                running.stop()
            console.print("local stack stopped")


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def _detach(config: LocalConfig, argv: list[str]) -> None:
    config.state_dir.mkdir(parents=True, exist_ok=True)
    log_path = config.state_dir / "local.log"
    args = [a for a in argv if a != "--detach"]
    with log_path.open("w", encoding="utf-8") as log:
        child = subprocess.Popen(
            [sys.executable, "-m", "asyncinfer.cli", *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env={**os.environ, STATE_DIR_ENV: str(config.state_dir)},
        )
    deadline = time.time() + 180
    with console.status("starting the local stack in the background…"):
        while time.time() < deadline:
            if child.poll() is not None:
                lines = [line for line in log_path.read_text(encoding="utf-8").splitlines() if line.strip()]
                raise StackError(lines[-1] if lines else f"the local stack exited with status {child.returncode}")
            if config.state_file.exists() and read_state(config.state_dir).get("pid") == child.pid:
                console.print(f"local stack up in the background (pid {child.pid}, log {log_path})")
                return
            time.sleep(0.2)
    child.terminate()
    raise StackError(f"the local stack did not come up within 180 s; see {log_path}")


@local.command("down")
def local_down() -> None:
    """Stop the local stack started with --detach."""
    with _errors():
        state = read_state(_state_dir())
        pid = int(state.get("pid", 0))
        if not _alive(pid):
            (_state_dir() / "local.json").unlink(missing_ok=True)
            raise StackError("the local stack is not running (removed its stale state file)")
        os.kill(pid, signal.SIGTERM)
        deadline = time.time() + 60
        while _alive(pid) and time.time() < deadline:
            time.sleep(0.2)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
        console.print("local stack stopped")


# --- working with a stack ---------------------------------------------------------------------------------------


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    )


def _submit(stack: target.Target, paths: list[Path], prefix: str) -> list[uploads.Upload]:
    items = uploads.collect(paths, prefix)
    with _progress() as progress:
        task = progress.add_task("uploading", total=len(items))
        return uploads.upload(stack, items, lambda _: progress.advance(task))


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--prefix", default="", help="Key prefix in the input bucket.")
@click.pass_context
def submit(ctx: click.Context, paths: tuple[Path, ...], prefix: str) -> None:
    """Upload files and folders to the input bucket."""
    with _errors():
        stack = _target(ctx)
        done = _submit(stack, list(paths), prefix)
        console.print(f"uploaded {len(done)} file(s) to s3://{stack.outputs['InputBucketName']}/{prefix}")


def follow(
    stack: target.Target,
    expect: int | None,
    timeout: float,
    uploaded: dict[str, float] | None = None,
    show: bool = True,
) -> tuple[Summary, list[Received]]:
    """Receive result events until ``expect`` have arrived or ``timeout`` seconds pass without one."""
    follower = ResultFollower(stack)
    summary, received = Summary(), []
    last = time.time()
    with _progress() as progress:
        task = progress.add_task("results", total=expect)
        while (expect is None or summary.total < expect) and time.time() - last < timeout:
            for item in follower.poll():
                last = time.time()
                received.append(item)
                summary.add(item, (uploaded or {}).get(item.input_key))
                progress.update(
                    task,
                    advance=1,
                    description=f"results: [green]{summary.completed} completed[/] [red]{summary.failed} failed[/]",
                )
                if show and expect is None:
                    progress.console.print(f"{item.status:9} {item.event.detail['inferenceId'][:12]} {item.input_key}")
    return summary, received


def _summary_table(summary: Summary, title: str) -> Table:
    figures = summary.as_dict()
    table = Table(title=title, show_header=False)
    table.add_row("completed", str(summary.completed))
    table.add_row("failed", str(summary.failed))
    for reason, count in sorted(summary.reasons.items(), key=lambda kv: -kv[1]):
        table.add_row(f"  {count} x", reason[:110])
    for key, label in (("latencyP50Seconds", "latency p50"), ("latencyP95Seconds", "latency p95")):
        if figures[key] is not None:
            table.add_row(label, f"{figures[key]:.2f} s (upload → result event)")
    if figures["throughputFilesPerSecond"] is not None:
        table.add_row("throughput", f"{figures['throughputFilesPerSecond']:.1f} files/s")
    return table


@main.command()
@click.option("--expect", type=int, default=None, help="Stop after this many result events.")
@click.option("--timeout", default=60.0, show_default=True, help="Stop after this many seconds without an event.")
@click.pass_context
def watch(ctx: click.Context, expect: int | None, timeout: float) -> None:
    """Follow result events from the results queue (consumes them)."""
    with _errors():
        summary, _ = follow(_target(ctx), expect, timeout)
        console.print(_summary_table(summary, "results"))


@main.command()
@click.option("--status", type=click.Choice(["SUBMITTING", "SUBMITTED", "COMPLETED", "FAILED"]), default=None)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.option("--limit", type=int, default=None)
@click.pass_context
def jobs(ctx: click.Context, status: str | None, as_json: bool, limit: int | None) -> None:
    """List job records."""
    with _errors():
        found = job_records.list_jobs(_target(ctx), status, limit)
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


@main.command()
@click.option("-n", "count", default=50, show_default=True, help="How many files to drop.")
@_with_local_options
@click.option("--timeout", default=120.0, show_default=True, help="Give up after this many seconds without a result.")
def demo(
    count: int, port: int, parameters: tuple[str, ...], container_url: str | None, concurrency: int, timeout: float
) -> None:
    """Bring up the local stack, drop N files (some rejected), follow them to the end, summarise, stop."""
    from asyncinfer import demo_inputs

    config = _config(port, parameters, container_url, concurrency)
    with _errors():
        running = RunningStack(config)
        with console.status("starting the local stack (training the demo model)…"):
            running.start()
        try:
            _print_stack(running)
            stack = target.local(config.state_dir)
            files = demo_inputs.demo_files(count)
            with tempfile.TemporaryDirectory() as scratch:
                folder = Path(scratch) / "demo"
                demo_inputs.write(files, folder)
                done = _submit(stack, [folder], "")
            uploaded = {item.key: item.uploaded_at for item in done}
            summary, received = follow(stack, count, timeout, uploaded, show=False)
            _print_results(received)
            console.print(_summary_table(summary, f"{count} files through the local pipeline"))
            expected_failed = sum(1 for f in files if f.expected_status == "FAILED")
            if summary.total != count:
                raise StackError(f"only {summary.total} of {count} files reached a terminal state within the timeout")
            if summary.failed != expected_failed:
                raise StackError(f"{summary.failed} files failed, {expected_failed} were expected to")
        finally:
            with console.status("stopping the local stack…"):
                running.stop()


def _print_results(received: list[Received]) -> None:
    table = Table(title="every result")
    for column in ("file", "status", "ms", "output / reason"):
        table.add_column(column, overflow="fold")
    for item in sorted(received, key=lambda r: r.input_key):
        detail = item.event.detail
        outcome = detail.get("outputLocation") if item.status == "COMPLETED" else detail.get("failureReason")
        style = "green" if item.status == "COMPLETED" else "red"
        table.add_row(
            item.input_key, f"[{style}]{item.status}[/]", str(detail.get("durationMs") or ""), str(outcome or "")[:100]
        )
    console.print(table)


if __name__ == "__main__":
    main()
