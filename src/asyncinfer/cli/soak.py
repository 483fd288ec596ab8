"""``asyncinfer soak``: files through the local stack with faults on, the promise audited, the report written."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from rich.console import Console

from asyncinfer.cli.app import FAULTS_HELP, errors, fault_plan, project_root, state_dir
from asyncinfer.cli.display import console, progress, soak_table
from asyncinfer.cli.iam_report import show_report
from asyncinfer.local.stack import read_state


@click.command()
@click.option("--files", default=300, show_default=True, help="How many files to drop (1 in 10 is rejected).")
@click.option("--faults", "faults_spec", default="all", show_default=True, help=FAULTS_HELP)
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
        faults=fault_plan(faults_spec, seed),
        seed=seed,
        in_flight=in_flight,
        stall_timeout=stall_timeout,
        function_timeout=function_timeout or None,
    )
    stack_state_dir = state_dir() if running else state_dir() / "soak"
    if running:
        from asyncinfer.faults import FaultPlan

        with errors():
            state = read_state(stack_state_dir)
        settings.faults = FaultPlan.from_json(state.get("faults") or {})
        settings.function_timeout = state.get("function_timeout")  # None: the template's (the settle time uses it)
    with errors(), progress() as bar:
        task = bar.add_task("starting the stack", total=files)

        def show(phase: str, done: int, total: int) -> None:
            bar.update(task, completed=done, total=total, description=phase)

        result = soaking.run(
            settings, root=project_root(), state_dir=stack_state_dir, running=running, base_port=port, progress=show
        )
    path = report_path or state_dir() / soaking.REPORT_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result.to_json(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (console if console.is_terminal else Console(width=132)).print(soak_table(result))
    console.print(f"report: {path}")
    if not running:
        show_report(stack_state_dir)  # the IAM least-privilege report of the soak's own stack
    if not result.ok:
        for violation in result.violations:
            console.print(f"[red]violation[/]: {violation}")
        sys.exit(1)
    console.print("[green]promise kept[/]: every file has one terminal state and one result event, or a dead letter")
