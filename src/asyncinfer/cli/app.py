"""The ``asyncinfer`` command group and what its commands share: which stack, the state folder, one-line errors."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click

from asyncinfer import target, uploads
from asyncinfer.local.stack import StackError

if TYPE_CHECKING:
    from asyncinfer.faults import FaultPlan

STATE_DIR_ENV = "ASYNCINFER_STATE_DIR"
FAULTS_HELP = "Fault injection: all, none, or NAME[=RATE],... (see docs/reliability.md for the catalogue)."


def project_root() -> Path:
    """The folder holding template.yaml: the current one or a parent of it, else this package's checkout."""
    for folder in (Path.cwd(), *Path.cwd().parents):
        if (folder / "template.yaml").exists():
            return folder
    return Path(__file__).resolve().parents[3]


def state_dir() -> Path:
    return Path(os.environ.get(STATE_DIR_ENV) or project_root() / ".asyncinfer")


@contextmanager
def errors() -> Iterator[None]:
    """Known failures become one line on stderr: exit status 2 for the input's fault, else 1."""
    from async_pipeline.inference_ids import MissingObjectVersion
    from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError

    try:
        yield
    except (StackError, uploads.MissingPath, MissingObjectVersion) as exc:
        raise click.ClickException(str(exc)) from None
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise click.ClickException(f"{error.get('Code')}: {error.get('Message')}") from None
    except uploads.InvalidUploads as exc:
        raise click.UsageError(str(exc)) from None
    except ParamValidationError as exc:  # a value the API refuses, found before any request: the input's fault
        raise click.UsageError(f"the request cannot be made: {exc}") from None
    except BotoCoreError as exc:
        raise click.ClickException(f"cannot reach the stack's AWS APIs: {exc}") from None


def target_of(ctx: click.Context) -> target.Target:
    """The stack the command works on: ``--stack-name``'s, else the local one."""
    return target.resolve(ctx.obj["stack_name"], ctx.obj["region"], state_dir())


def key_values(parameters: tuple[str, ...], option: str = "--parameter") -> dict[str, str]:
    """``--parameter KEY=VALUE`` (or another ``option``'s) values as a mapping."""
    overrides = {}
    for item in parameters:
        key, sep, value = item.partition("=")
        if not sep:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint=option)
        overrides[key] = value
    return overrides


def fault_plan(spec: str, seed: int) -> FaultPlan:
    from asyncinfer.faults import FaultPlan, FaultSpecError

    try:
        return FaultPlan.parse(spec, seed)
    except FaultSpecError as exc:
        raise click.BadParameter(str(exc), param_hint="--faults") from None


@click.group()
@click.option(
    "--stack-name", default=None, help="Work on this deployed stack (CloudFormation outputs) instead of the local one."
)
@click.option("--region", default=None, help="AWS region of --stack-name (default: your AWS configuration).")
@click.pass_context
def main(ctx: click.Context, stack_name: str | None, region: str | None) -> None:
    """Drop-a-file pipeline on a SageMaker asynchronous endpoint."""
    ctx.obj = {"stack_name": stack_name, "region": region}
