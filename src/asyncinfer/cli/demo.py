"""``asyncinfer demo``: a local stack, N files dropped into it, followed to the end, summarised, stopped."""

from __future__ import annotations

import tempfile
from pathlib import Path

import click

from asyncinfer import target, uploads
from asyncinfer.cli.app import errors
from asyncinfer.cli.display import (
    console,
    follow_showing_progress,
    results_table,
    stack_table,
    summary_table,
    upload_items_showing_progress,
)
from asyncinfer.cli.local import local_config, with_local_options
from asyncinfer.local.stack import RunningStack, StackError


@click.command()
@click.option("-n", "count", default=50, show_default=True, help="How many files to drop.")
@with_local_options
@click.option("--timeout", default=120.0, show_default=True, help="Give up after this many seconds without a result.")
def demo(
    count: int, port: int, parameters: tuple[str, ...], container_url: str | None, concurrency: int, timeout: float
) -> None:
    """Bring up the local stack, drop N files (some rejected), follow them to the end, summarise, stop."""
    from asyncinfer import demo_inputs

    config = local_config(port, parameters, container_url, concurrency)
    with errors():
        running = RunningStack(config)
        with console.status("starting the local stack (training the demo model)…"):
            running.start()
        try:
            console.print(stack_table(running))
            stack = target.local(config.state_dir)
            files = demo_inputs.demo_files(count)
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
            summary, received = follow_showing_progress(stack, count, timeout, uploaded, show=False)
            console.print(results_table(stack, received, "demo/"))
            console.print(summary_table(summary, f"{count} files through the local pipeline"))
            expected_failed = sum(1 for f in files if f.expected_status == "FAILED")
            if summary.total != count:
                raise StackError(f"only {summary.total} of {count} files reached a terminal state within the timeout")
            if summary.failed != expected_failed:
                raise StackError(f"{summary.failed} files failed, {expected_failed} were expected to")
        finally:
            with console.status("stopping the local stack…"):
                running.stop()
