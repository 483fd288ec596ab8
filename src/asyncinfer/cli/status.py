"""``asyncinfer status``: the endpoint's state and why files are not done yet (asyncinfer.endpoint_status), or with
``FILE|S3-URI|INFERENCE-ID`` one file's job (asyncinfer.job_status). Local stack, or ``--stack-name``."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import click
from rich.live import Live
from rich.table import Table
from rich.text import Text

from asyncinfer import target
from asyncinfer.cli.app import errors, target_of
from asyncinfer.cli.display import console

if TYPE_CHECKING:
    from asyncinfer.endpoint_status import EndpointStatus


@click.command()
@click.argument("reference", required=False)
@click.option("--prefix", default="", help="For a local FILE: the --prefix it was submitted with.")
@click.option("--json", "as_json", is_flag=True, help="The endpoint view as one JSON object (for scripts).")
@click.option("--follow", is_flag=True, help="Refresh the endpoint view in place until Ctrl-C.")
@click.option("--interval", default=2.0, show_default=True, help="Seconds between refreshes with --follow.")
@click.pass_context
def status(
    ctx: click.Context, reference: str | None, prefix: str, as_json: bool, follow: bool, interval: float
) -> None:
    """Without REFERENCE: the endpoint (instances now and desired, backlog and age of the oldest request, scaling,
    alarms in ALARM, job counts by status). With REFERENCE (a local file, an s3:// URI or an inference id): one
    file's job, its state, times, output or reason; while it waits, the files ahead of it and whether the endpoint
    is scaling out from zero."""
    if reference is not None:
        if as_json or follow:
            raise click.UsageError("--json and --follow are for the endpoint view (no REFERENCE)")
        _job(ctx, reference, prefix)
        return
    with errors():
        stack = target_of(ctx)
        try:
            _endpoint(stack, as_json, follow, interval)
        except KeyboardInterrupt:
            return


# With --follow: the job counts (a Scan of the whole jobs table) and the alarms (DescribeAlarms) are read at most
# this often; the endpoint's own state at every refresh.
SLOW_REFRESH_SECONDS = 30.0


class _Follower:
    """Each refresh's EndpointStatus, the costly parts reused between their slower refreshes."""

    def __init__(self, stack: target.Target, clock: Callable[[], float] = time.monotonic) -> None:
        self._stack, self._clock = stack, clock
        self._slow_at: float | None = None
        self._jobs: dict[str, int] = {}
        self._alarms: dict[str, str] = {}

    def __call__(self) -> EndpointStatus:
        from asyncinfer import endpoint_status

        now = self._clock()
        slow = self._slow_at is None or now - self._slow_at >= SLOW_REFRESH_SECONDS
        found = endpoint_status.gather(self._stack, jobs=slow, alarms=slow)
        if slow:
            self._slow_at, self._jobs, self._alarms = now, found.jobs, found.alarms
            return found
        return dataclasses.replace(found, jobs=self._jobs, alarms=self._alarms)


def _endpoint(stack: target.Target, as_json: bool, follow: bool, interval: float) -> None:
    from asyncinfer import endpoint_status

    refresh = _Follower(stack)
    if as_json:
        while True:  # one object per line; once without --follow
            click.echo(json.dumps(refresh().to_json(), default=str))
            if not follow:
                return
            time.sleep(interval)
    if not follow:
        for line in endpoint_status.lines(refresh()):
            console.print(line, highlight=False, markup=False)
        return
    with Live(console=console, auto_refresh=False) as live:
        while True:
            live.update(Text("\n".join(endpoint_status.lines(refresh()))), refresh=True)
            time.sleep(interval)


def _job(ctx: click.Context, reference: str, prefix: str) -> None:
    from asyncinfer import job_status

    with errors():
        stack = target_of(ctx)
        try:
            found = job_status.report(stack, job_status.resolve(stack, reference, prefix))
        except job_status.NotFound as exc:
            raise click.ClickException(str(exc)) from None
    table = Table(show_header=False, title="job")
    table.add_column("what", style="bold")
    table.add_column("value", overflow="fold")
    for label, value in job_status.rows(found):
        table.add_row(label, value)
    console.print(table)
