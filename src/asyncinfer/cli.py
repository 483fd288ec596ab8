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
from asyncinfer.local.ports import DEFAULT_BASE_PORT, StackPorts
from asyncinfer.local.stack import STATE_FILE, LocalConfig, RunningStack, StackError, read_state
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


def _key_values(parameters: tuple[str, ...]) -> dict[str, str]:
    overrides = {}
    for item in parameters:
        key, sep, value = item.partition("=")
        if not sep:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--parameter")
        overrides[key] = value
    return overrides


def _config(port: int, parameters: tuple[str, ...], container_url: str | None, concurrency: int) -> LocalConfig:
    overrides = _key_values(parameters)
    return LocalConfig(
        root=_project_root(),
        state_dir=_state_dir(),
        ports=StackPorts.from_base(port),
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
    if running.faults is not None:
        table.add_row("fault injection", running.faults.plan.describe() + f" (seed {running.faults.plan.seed})")
    for key, value in running.stack.outputs.items():
        table.add_row(key, value)
    console.print(table)


_local_options = [
    click.option(
        "--port",
        default=DEFAULT_BASE_PORT,
        show_default=True,
        help="AWS APIs on PORT, sagemaker-runtime on PORT+1, model on PORT+2, Lambda on PORT+3.",
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


def _fault_plan(spec: str, seed: int) -> Any:
    from asyncinfer.faults import FaultPlan, FaultSpecError

    try:
        return FaultPlan.parse(spec, seed)
    except FaultSpecError as exc:
        raise click.BadParameter(str(exc), param_hint="--faults") from None


_FAULTS_HELP = "Fault injection: all, none, or NAME[=RATE],... (see docs/reliability.md for the catalogue)."


@local.command("up")
@_with_local_options
@click.option("--detach", is_flag=True, help="Run in the background; stop it with `asyncinfer local down`.")
@click.option("--faults", "faults_spec", default="none", show_default=True, help=_FAULTS_HELP)
@click.option("--fault-seed", default=0, show_default=True, help="Seed of the fault injections' random draws.")
@click.option("--function-timeout", type=int, default=None, help="Every function's Timeout in seconds (leases too).")
def local_up(
    port: int,
    parameters: tuple[str, ...],
    container_url: str | None,
    concurrency: int,
    detach: bool,
    faults_spec: str,
    fault_seed: int,
    function_timeout: int | None,
) -> None:
    """Start the local stack (foreground until Ctrl-C, or --detach)."""
    from asyncinfer.faults import stack_parameters

    config = _config(port, parameters, container_url, concurrency)
    plan = _fault_plan(faults_spec, fault_seed)
    if plan:
        config.faults = plan
        config.parameters = stack_parameters(plan, config.parameters)
    config.function_timeout = function_timeout
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
            (_state_dir() / STATE_FILE).unlink(missing_ok=True)
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


@main.command()
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
    with _errors():
        stack = _target(ctx)
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
        table.add_row(action.source, action.subject[:24], action.outcome, action.reason[:90])
    console.print(table)


@main.command()
@click.option("--dry-run", is_flag=True, help="Print the upload and the SAM commands; run nothing.")
@click.option("--model-data-url", default=None, help="Your model.tar.gz in S3 (default: the demo one).")
@click.option("--parameter", "parameters", multiple=True, metavar="KEY=VALUE", help="Template parameter override.")
@click.pass_context
def deploy(ctx: click.Context, dry_run: bool, model_data_url: str | None, parameters: tuple[str, ...]) -> None:
    """Upload the demo model where the template expects it, then `sam build` and `sam deploy` (needs --stack-name)."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    from asyncinfer import deploy as deploying

    stack_name = ctx.obj["stack_name"]
    if not stack_name:
        raise click.UsageError("deploy needs --stack-name: asyncinfer --stack-name NAME [--region R] deploy")
    overrides = _key_values(parameters)
    session = boto3.Session(region_name=ctx.obj["region"])
    region = session.region_name
    if not region:
        raise click.UsageError("no region: pass --region or configure one (AWS_REGION, ~/.aws/config)")
    upload: tuple[str, str] | None = None
    if model_data_url is None:
        try:
            upload = deploying.default_model_location(session)
        except (BotoCoreError, ClientError) as exc:
            if not dry_run:
                raise click.ClickException(f"cannot find your AWS account (credentials?): {exc}") from None
            upload = (f"sagemaker-{region}-<account>", deploying.MODEL_KEY)
        model_data_url = f"s3://{upload[0]}/{upload[1]}"
    steps = deploying.plan(stack_name, region, model_data_url, overrides, _project_root() / "template.yaml")
    if upload is not None:
        console.print(
            f"{'would upload' if dry_run else 'uploading'} the demo model to {model_data_url}", soft_wrap=True
        )
    for command in steps.commands:
        console.print("$ " + " ".join(command), markup=False, highlight=False, soft_wrap=True)
    if dry_run:
        return
    with _errors():
        try:
            if upload is not None:
                deploying.upload_demo_model(session, *upload)
            deploying.run(steps, _project_root())
        except deploying.DeployError as exc:
            raise click.ClickException(str(exc)) from None


@main.command()
@click.option("--files", default=300, show_default=True, help="How many files to drop (1 in 10 is rejected).")
@click.option("--faults", "faults_spec", default="all", show_default=True, help=_FAULTS_HELP)
@click.option("--seed", default=0, show_default=True, help="Seed of the fault draws and of the files' contents.")
@click.option(
    "--running", is_flag=True, help="Use the local stack that is up (`asyncinfer local up --faults ...`) as it is."
)
@click.option(
    "--function-timeout",
    default=8,
    show_default=True,
    help="Own stack: every function's Timeout in seconds, which bounds leases and crash retries (0: the template's).",
)
@click.option("--in-flight", default=64, show_default=True, help="Files uploaded but not yet accounted for, at most.")
@click.option(
    "--timeout", "stall_timeout", default=180.0, show_default=True, help="Give up after this long without progress."
)
@click.option("--port", type=int, default=None, help="Own stack: AWS APIs on PORT, the others above (default: free).")
@click.option("--report", "report_path", type=click.Path(path_type=Path), default=None, help="Where the JSON goes.")
def soak(
    files: int,
    faults_spec: str,
    seed: int,
    running: bool,
    function_timeout: int,
    in_flight: int,
    stall_timeout: float,
    port: int | None,
    report_path: Path | None,
) -> None:
    """Drive N files through the local stack with faults on, audit the promise, exit 1 if it was broken."""
    from asyncinfer import soak as soaking

    settings = soaking.SoakSettings(
        files=files,
        faults=_fault_plan(faults_spec, seed),
        seed=seed,
        in_flight=in_flight,
        stall_timeout=stall_timeout,
        function_timeout=function_timeout or None,
    )
    state_dir = _state_dir() if running else _state_dir() / "soak"
    if running:
        from asyncinfer.faults import FaultPlan

        with _errors():
            state = read_state(state_dir)
        settings.faults = FaultPlan.from_json(state.get("faults") or {})
        settings.function_timeout = state.get("function_timeout")  # None: the template's (the settle time uses it)
    with _errors(), _progress() as progress:
        task = progress.add_task("starting the stack", total=files)

        def show(phase: str, done: int, total: int) -> None:
            progress.update(task, completed=done, total=total, description=phase)

        result = soaking.run(
            settings, root=_project_root(), state_dir=state_dir, running=running, base_port=port, progress=show
        )
    path = report_path or _state_dir() / soaking.REPORT_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result.to_json(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (console if console.is_terminal else Console(width=132)).print(_soak_table(result))
    console.print(f"report: {path}")
    if not result.ok:
        for violation in result.violations:
            console.print(f"[red]violation[/]: {violation}")
        sys.exit(1)
    console.print("[green]promise kept[/]: every file has one terminal state and one result event, or a dead letter")


def _soak_table(result: Any) -> Table:
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
    table.add_row("dead-letter entries", str(result.dead_letter_entries))
    for reason, count in result.dead_letter_reasons.items():
        table.add_row(f"  {reason[:110]}", str(count))
    table.add_row("inputs accounted for by a dead letter only", str(result.dead_lettered_inputs))
    table.add_row(
        "orphan outputs (no job points to them)",
        f"{result.orphan_outputs} + {result.orphan_failure_objects} failure objects",
    )
    shown: dict[str, int] = {}
    for reason, count in result.failure_reasons.items():
        shown[reason[:80]] = shown.get(reason[:80], 0) + count
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


if __name__ == "__main__":
    main()
