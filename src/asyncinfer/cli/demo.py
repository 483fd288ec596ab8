"""``asyncinfer demo``: a local stack, N files dropped into it, followed to the end, summarised, stopped.

``--scale-from-zero`` shows the endpoint's life on the way: the stack's first instance scales in to zero when idle,
the first file wakes it (HasBacklogWithoutCapacity, then target tracking up to MaxInstances), and idle again it
goes back to zero, with a status line at each change; on a fast clock (``--time-scale``, 40 by default) that takes
about a minute.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import click

from asyncinfer import endpoint_status, target, uploads
from asyncinfer.cli.app import errors
from asyncinfer.cli.display import (
    console,
    endpoint_line_of,
    follow_showing_progress,
    results_table,
    stack_table,
    summary_table,
    upload_items_showing_progress,
)
from asyncinfer.cli.iam_report import show_report
from asyncinfer.cli.local import local_config, timed, with_local_options, with_time_options
from asyncinfer.local.stack import LocalConfig, RunningStack, StackError

SCALE_FROM_ZERO_TIME_SCALE = 40.0
# Emulated minutes the endpoint may take to reach zero: target tracking's low alarm (15 of 15 minutes), the
# scale-in cooldown after a scale-out (5), the instances' stop, and margin.
MINUTES_TO_ZERO = 30


def wait_showing(
    stack: target.Target, done: Callable[[endpoint_status.EndpointStatus], bool], timeout: float, what: str
) -> endpoint_status.EndpointStatus:
    """Poll the endpoint's status until ``done``; print its line whenever the instance counts change."""
    shown: tuple[int | None, int | None] | None = None
    deadline = time.monotonic() + timeout
    with console.status(what):
        while True:
            found = endpoint_status.gather(stack)
            counts = (found.current_instances, found.desired_instances)
            if counts != shown:
                console.print(f"{time.strftime('%H:%M:%S')} {endpoint_status.endpoint_line(found)}", highlight=False)
                shown = counts
            if done(found):
                return found
            if time.monotonic() > deadline:
                raise StackError(f"the endpoint did not get there in {timeout:.0f} s: {what}")
            time.sleep(0.5)


def use_digits_model(config: LocalConfig) -> None:
    """The image demo's stack: the scikit-learn framework image (so the script-mode stand-in serves it), JSON
    answers, its entry script named as that container needs, and the digits artifact at an empty ModelDataUrl.
    Parameters given on the command line win."""
    from asyncinfer.model.digits import SKLEARN_IMAGE

    config.demo_model = "digits"
    config.parameters.setdefault("ContainerImage", SKLEARN_IMAGE)
    config.parameters.setdefault("DefaultAccept", "application/json")
    # The scikit-learn container finds the script only through SAGEMAKER_PROGRAM (the template's InferenceProgram).
    config.parameters.setdefault("InferenceProgram", "inference.py")


def at_zero(found: endpoint_status.EndpointStatus) -> bool:
    return found.current_instances == 0 and found.desired_instances == 0 and found.status == "InService"


@click.command()
@click.option("-n", "count", default=50, show_default=True, help="How many files to drop.")
@click.option(
    "--model",
    type=click.Choice(["xgboost", "digits"]),
    default="xgboost",
    show_default=True,
    help="xgboost: CSV rows through the XGBoost stand-in. digits: PNG digits through a script-mode artifact "
    "(scikit-learn image, code/inference.py).",
)
@with_local_options
@with_time_options
@click.option("--timeout", default=120.0, show_default=True, help="Give up after this many seconds without a result.")
@click.option(
    "--scale-from-zero",
    is_flag=True,
    help=f"Wait for the endpoint at zero, wake it with the files, watch it go back (--time-scale "
    f"{SCALE_FROM_ZERO_TIME_SCALE:g} unless given).",
)
@click.pass_context
def demo(
    ctx: click.Context,
    count: int,
    model: str,
    port: int,
    parameters: tuple[str, ...],
    container_url: str | None,
    concurrency: int,
    time_scale: float,
    instance_start_seconds: float,
    instance_stop_seconds: float,
    timeout: float,
    scale_from_zero: bool,
) -> None:
    """Bring up the local stack, drop N files (some rejected), follow them to the end, summarise, stop."""
    from asyncinfer import demo_inputs

    config = local_config(port, parameters, container_url, concurrency)
    if model == "digits":
        use_digits_model(config)
    if scale_from_zero:
        if config.parameters.get("MinInstances", "0") != "0" or config.parameters.get("AutoScaling") == "disabled":
            raise click.BadParameter("needs MinInstances=0 and AutoScaling=enabled", param_hint="--scale-from-zero")
        if ctx.get_parameter_source("time_scale") is click.core.ParameterSource.DEFAULT:
            time_scale = SCALE_FROM_ZERO_TIME_SCALE
    timed(config, time_scale, instance_start_seconds, instance_stop_seconds)
    to_zero = MINUTES_TO_ZERO * 60 / time_scale + 30
    with errors():
        running = RunningStack(config)
        with console.status("starting the local stack (training the demo model)…"):
            running.start()
        try:
            console.print(stack_table(running))
            stack = target.local(config.state_dir)
            if scale_from_zero:
                console.print(f"time scale {time_scale:g}: an emulated minute lasts {60 / time_scale:.1f} s")
                wait_showing(stack, at_zero, to_zero, "idle: waiting for the endpoint to scale in to zero…")
            files = demo_inputs.digit_files(count) if model == "digits" else demo_inputs.demo_files(count)
            with tempfile.TemporaryDirectory() as scratch:
                folder = Path(scratch) / "demo"
                paths = demo_inputs.write(files, folder)
                # Each file with its own metadata (custom-attributes goes to the model): every event brings it back.
                items = [
                    uploads.Upload(path, f"demo/{file.name}", len(file.body), metadata=file.metadata)
                    for path, file in zip(paths, files, strict=True)
                ]
                done = upload_items_showing_progress(stack, items)
            uploaded = {item.key: item.uploaded_at for item in done}
            summary, received = follow_showing_progress(
                stack, count, timeout, uploaded, show=False, endpoint_line=endpoint_line_of(stack)
            )
            console.print(results_table(stack, received, "demo/"))
            console.print(summary_table(summary, f"{count} files through the local pipeline"))
            expected_failed = sum(1 for f in files if f.expected_status == "FAILED")
            if summary.total != count:
                raise StackError(f"only {summary.total} of {count} files reached a terminal state within the timeout")
            if summary.failed != expected_failed:
                raise StackError(f"{summary.failed} files failed, {expected_failed} were expected to")
            if scale_from_zero:
                wait_showing(stack, at_zero, to_zero, "idle again: waiting for the endpoint to go back to zero…")
                for line in endpoint_status.lines(endpoint_status.gather(stack)):
                    console.print(line, highlight=False, markup=False)
        finally:
            with console.status("stopping the local stack…"):
                running.stop()
            show_report(config.state_dir)
