"""``asyncinfer preflight``: check a model container against what an asynchronous endpoint needs (preflight.py)."""

from __future__ import annotations

import dataclasses
from contextlib import ExitStack
from pathlib import Path

import click
from rich.table import Table

from asyncinfer.cli.app import errors, key_values, project_root, state_dir
from asyncinfer.cli.display import console


def _samples(items: tuple[str, ...]) -> dict[str, bytes]:
    samples = {}
    for content_type, path in key_values(items, "--sample").items():
        try:
            samples[content_type] = Path(path).read_bytes()
        except OSError as exc:
            raise click.BadParameter(f"cannot read {path}: {exc.strerror}", param_hint="--sample") from None
    return samples


@click.command()
@click.option("--container-url", default=None, help="Check the container at this URL (default: the local stack's).")
@click.option("--model", "model_uri", default=None, help="Serve this model artifact (path or s3://) and check it.")
@click.option(
    "--model-server",
    type=click.Choice(["xgboost", "script"]),
    default=None,
    help="The stand-in serving --model (default: chosen from the ContainerImage parameter).",
)
@click.option("--parameter", "parameters", multiple=True, help="Template parameter KEY=VALUE (repeatable).")
@click.option("--max-payload-bytes", type=click.IntRange(min=1), default=None, help="Payload size to try.")
@click.option("--content-type", "content_types", multiple=True, help="A content type the pipeline will send.")
@click.option("--sample", "sample_files", multiple=True, help="CONTENT-TYPE=FILE: a real input of that type.")
def preflight(
    container_url: str | None,
    model_uri: str | None,
    parameters: tuple[str, ...],
    max_payload_bytes: int | None,
    content_types: tuple[str, ...],
    sample_files: tuple[str, ...],
    model_server: str | None,
) -> None:
    """Check a model container: /ping, Content-Length on responses, a payload of the configured maximum size,
    the response time against InvocationTimeoutSeconds, and each content type the pipeline sends. Settings come
    from template.yaml (with --parameter, or the running local stack's); exit status 1 if a check fails."""
    from asyncinfer.local.stack import read_state
    from asyncinfer.model.framework_limits import FrameworkLimitError
    from asyncinfer.preflight import Preflight, settings_from_template

    if container_url and model_uri:
        raise click.UsageError("give --container-url or --model, not both")
    overrides = key_values(parameters)
    with errors(), ExitStack() as cleanup:
        if container_url is None and model_uri is None:
            state = read_state(state_dir())
            container_url = str(state["model_container_url"])
            overrides = {**state.get("parameters", {}), **overrides}
        try:
            settings = settings_from_template(project_root(), overrides, content_types=content_types)
        except FrameworkLimitError as exc:
            raise click.ClickException(f"the Model's Environment: {exc}") from None
        settings = dataclasses.replace(
            settings,
            max_payload_bytes=max_payload_bytes or settings.max_payload_bytes,
            samples={**settings.samples, **_samples(sample_files)},
        )
        if model_uri is not None:
            from asyncinfer.model.container_images import stand_in_for
            from asyncinfer.model.server import start_model_server

            chosen = model_server or stand_in_for(overrides.get("ContainerImage", ""))
            with console.status(f"loading {model_uri}…"):
                server = start_model_server(
                    model_uri,
                    framework_limits=settings.framework_limits,
                    container="script" if chosen == "script" else "xgboost",
                )
            cleanup.callback(server.stop)
            container_url = server.url
        assert container_url is not None
        with console.status(f"checking {container_url}…"):
            checks = Preflight(container_url, settings).run()
    table = Table(title=f"preflight: {container_url}")
    for column in ("check", "result", "detail", "fix"):
        table.add_column(column, overflow="fold")
    for check in checks:
        result = "[green]pass[/green]" if check.passed else "[red]FAIL[/red]"
        table.add_row(check.name, result, check.detail, check.fix)
    console.print(table)
    failed = [check.name for check in checks if not check.passed]
    if failed:
        raise click.ClickException(f"{len(failed)} check(s) failed: {', '.join(failed)}")
