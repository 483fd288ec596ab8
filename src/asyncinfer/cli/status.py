"""``asyncinfer status``: the endpoint's state and why files are not done yet (local stack, or ``--stack-name``)."""

from __future__ import annotations

import json
import time

import click
from rich.live import Live
from rich.text import Text

from asyncinfer.cli.app import errors, target_of
from asyncinfer.cli.display import console


@click.command()
@click.argument("job", required=False)
@click.option("--json", "as_json", is_flag=True, help="One JSON object (for scripts).")
@click.option("--follow", is_flag=True, help="Refresh in place until Ctrl-C.")
@click.option("--interval", default=2.0, show_default=True, help="Seconds between refreshes with --follow.")
@click.pass_context
def status(ctx: click.Context, job: str | None, as_json: bool, follow: bool, interval: float) -> None:
    """The endpoint: instances now and desired, backlog and age of the oldest request, scaling, alarms in ALARM,
    and job counts by status."""
    from asyncinfer import endpoint_status

    if job is not None:
        raise click.UsageError("the status of one job (FILE, S3 URI or inference id) is not in this version")
    with errors():
        stack = target_of(ctx)
        try:
            if as_json:
                while True:  # one object per line; once without --follow
                    click.echo(json.dumps(endpoint_status.gather(stack).to_json(), default=str))
                    if not follow:
                        return
                    time.sleep(interval)
            if not follow:
                for line in endpoint_status.lines(endpoint_status.gather(stack)):
                    console.print(line, highlight=False, markup=False)
                return
            with Live(console=console, auto_refresh=False) as live:
                while True:
                    live.update(Text("\n".join(endpoint_status.lines(endpoint_status.gather(stack)))), refresh=True)
                    time.sleep(interval)
        except KeyboardInterrupt:
            return
