"""``asyncinfer local up`` / ``local down``: the local stack in the foreground or detached, and the options that
every command starting one shares."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import TypeVar

import click

from asyncinfer.cli.app import FAULTS_HELP, STATE_DIR_ENV, errors, fault_plan, key_values, project_root, state_dir
from asyncinfer.cli.display import console, stack_table
from asyncinfer.cli.iam_report import show_report
from asyncinfer.local import stack_process
from asyncinfer.local.ports import DEFAULT_BASE_PORT, StackPorts
from asyncinfer.local.stack import LocalConfig, RunningStack, StackError

Command = TypeVar("Command", bound=Callable[..., object])

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


_time_options = [
    click.option(
        "--time-scale",
        type=click.FloatRange(min=0.01, max=600),
        default=1.0,
        show_default=True,
        help="A minute of the endpoint's life (metrics, alarms, cooldowns, instance start-up) lasts 60/N seconds.",
    ),
    click.option(
        "--instance-start-seconds",
        type=click.FloatRange(min=0),
        default=120.0,
        show_default=True,
        help="Emulated seconds an endpoint instance takes to come into service (AWS: minutes).",
    ),
    click.option(
        "--instance-stop-seconds",
        type=click.FloatRange(min=0),
        default=30.0,
        show_default=True,
        help="Emulated seconds an endpoint instance takes to stop.",
    ),
]


def with_time_options(func: Command) -> Command:
    """``--time-scale``, ``--instance-start-seconds``, ``--instance-stop-seconds`` (read with :func:`timed`)."""
    for option in reversed(_time_options):
        func = option(func)
    return func


def timed(config: LocalConfig, time_scale: float, instance_start_seconds: float, instance_stop_seconds: float) -> None:
    config.time_scale = time_scale
    config.instance_start_seconds = instance_start_seconds
    config.instance_stop_seconds = instance_stop_seconds


def with_local_options(func: Command) -> Command:
    """The options of a command that starts a local stack: ``--port``, ``--parameter``, ``--container-url``,
    ``--concurrency`` (read with :func:`local_config`)."""
    for option in reversed(_local_options):
        func = option(func)
    return func


def local_config(port: int, parameters: tuple[str, ...], container_url: str | None, concurrency: int) -> LocalConfig:
    return LocalConfig(
        root=project_root(),
        state_dir=state_dir(),
        ports=StackPorts.from_base(port),
        parameters=key_values(parameters),
        container_url=container_url,
        concurrency=concurrency,
    )


@click.group()
def local() -> None:
    """Run the stack on this machine (no AWS account, no Docker)."""


@local.command("up")
@with_local_options
@with_time_options
@click.option("--detach", is_flag=True, help="Run in the background; stop it with `asyncinfer local down`.")
@click.option("--faults", "faults_spec", default="none", show_default=True, help=FAULTS_HELP)
@click.option("--fault-seed", default=0, show_default=True, help="Seed of the fault injections' random draws.")
@click.option("--function-timeout", type=int, default=None, help="Every function's Timeout in seconds (leases too).")
@click.option(
    "--model-server",
    type=click.Choice(["xgboost", "script"]),
    default=None,
    help="The model container stand-in: the XGBoost 1.7-1 container, or a framework container's script mode "
    "(code/inference.py). Default: chosen from the ContainerImage parameter.",
)
@click.option(
    "--iam",
    type=click.Choice(["enforce", "audit", "off"]),
    default="enforce",
    show_default=True,
    help="IAM as AWS enforces it (enforce), decided and logged but never refused (audit), or not at all (off).",
)
def local_up(
    port: int,
    parameters: tuple[str, ...],
    container_url: str | None,
    concurrency: int,
    time_scale: float,
    instance_start_seconds: float,
    instance_stop_seconds: float,
    detach: bool,
    faults_spec: str,
    fault_seed: int,
    function_timeout: int | None,
    model_server: str | None,
    iam: str,
) -> None:
    """Start the local stack (foreground until Ctrl-C, or --detach)."""
    from asyncinfer.faults import stack_parameters

    config = local_config(port, parameters, container_url, concurrency)
    timed(config, time_scale, instance_start_seconds, instance_stop_seconds)
    plan = fault_plan(faults_spec, fault_seed)
    if plan:
        config.faults = plan
        config.parameters = stack_parameters(plan, config.parameters)
    config.function_timeout = function_timeout
    config.model_server = model_server
    config.iam = iam
    with errors():
        stack_process.clear_stale_state(config.state_dir)
        if detach:
            # The same command in the foreground, in a process of its own that outlives this one.
            command = [sys.executable, "-m", "asyncinfer.cli", *(a for a in sys.argv[1:] if a != "--detach")]
            with console.status("starting the local stack in the background…"):
                started = stack_process.start_detached(
                    command, config.state_dir, {**os.environ, STATE_DIR_ENV: str(config.state_dir)}
                )
            console.print(f"local stack up in the background (pid {started.pid}, log {started.log_path})")
            return
        running = RunningStack(config)
        stopping = stack_process.stop_requested()
        with console.status("starting the local stack…"):
            running.start()
        try:
            console.print(stack_table(running))
            console.print(f"state in {config.state_file}; Ctrl-C stops the stack")
            while not stopping.wait(0.5):
                if running.failed.is_set():
                    raise StackError(f"the local stack stopped working: {running.failure}")
        finally:
            with console.status("stopping…"):
                running.stop()
            console.print("local stack stopped")
            show_report(config.state_dir)


@local.command("down")
def local_down() -> None:
    """Stop the local stack started with --detach."""
    with errors():
        stack_process.stop(state_dir())
        console.print("local stack stopped")
        show_report(state_dir())
