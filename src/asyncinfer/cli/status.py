"""``asyncinfer status FILE|S3-URI|INFERENCE-ID``: one file's job (asyncinfer.job_status).

Without an argument the command is the endpoint view (issue 12); this module holds only the per-job part.
"""

from __future__ import annotations

import click
from rich.table import Table

from asyncinfer import job_status
from asyncinfer.cli.app import errors, target_of
from asyncinfer.cli.display import console


@click.command()
@click.argument("reference", required=False)
@click.option("--prefix", default="", help="For a local FILE: the --prefix it was submitted with.")
@click.pass_context
def status(ctx: click.Context, reference: str | None, prefix: str) -> None:
    """One file's job: its state, times, output or reason; while it waits, the files ahead of it and whether the
    endpoint is scaling out from zero. REFERENCE is a local file, an s3:// URI or an inference id."""
    if reference is None:
        raise click.UsageError("name a file, an s3:// URI or an inference id")
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
