"""``asyncinfer delete``: delete the stack, keeping its data unless ``--purge`` (the logic: asyncinfer/teardown.py)."""

from __future__ import annotations

import sys

import click
from rich.table import Table

from asyncinfer import teardown
from asyncinfer.cli.app import errors, project_root, state_dir
from asyncinfer.cli.display import console


def interactive() -> bool:
    """Whether someone can answer the confirmation (a test replaces this to answer through CliRunner's input)."""
    return sys.stdin.isatty()


def resources_table(
    title: str, resources: tuple[teardown.Resource, ...], counts: dict[str, int] | None = None
) -> Table:
    table = Table(title=title)
    for column in ("logical id", "type", "name", "ARN"):
        table.add_column(column, overflow="fold")
    if counts is not None:
        table.add_column("versions deleted", justify="right")
    for resource in resources:
        row = [resource.logical_id, resource.type, resource.physical_id or "-", resource.arn or "-"]
        if counts is not None:
            row.append(str(counts.get(resource.logical_id, "")))
        table.add_row(*row)
    return table


KEPT = "kept (DeletionPolicy: Retain)"


def later_purge(plan: teardown.Plan) -> str:
    # CloudFormation lists a deleted stack's resources for 90 days (ListStackResources).
    return (
        f"to delete them later: asyncinfer --stack-name {plan.stack_name} --region {plan.region} delete --purge "
        "(within 90 days of the deletion)"
    )


def question(plan: teardown.Plan) -> str:
    where = "the local stack" if plan.local else f"stack {plan.stack_name} ({plan.region})"
    if plan.purge:
        data = ", ".join(r.describe() for r in plan.resources if r.is_data) or "none"
        return f"Delete {where} and ALL its data, every object version included ({data})? This cannot be undone"
    return f"Delete {where}? Its data is kept (listed above)"


@click.command()
@click.option(
    "--purge",
    is_flag=True,
    help="Also delete the data: every object version and delete marker, the buckets, the table.",
)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (needed when not run from a terminal).")
@click.pass_context
def delete(ctx: click.Context, purge: bool, yes: bool) -> None:
    """Delete the stack. By default the buckets and the jobs table are kept (DeletionPolicy Retain) and listed;
    --purge empties and deletes them too."""
    import boto3

    from asyncinfer.local import stack_process
    from asyncinfer.local.stack import read_state
    from asyncinfer.local.template import load_sam

    stack_name = ctx.obj["stack_name"]
    with errors():
        try:
            doer: teardown.Teardown
            if stack_name:
                aws = boto3.Session(region_name=ctx.obj["region"])
                if aws.region_name is None:
                    raise click.UsageError("no region: pass --region or configure one (AWS_REGION, ~/.aws/config)")
                doer = teardown.DeployedTeardown(
                    stack_name, aws.client("cloudformation"), aws.client("s3"), aws.client("dynamodb")
                )
            else:
                from asyncinfer import target

                folder = state_dir()
                local = target.local(folder)
                doer = teardown.LocalTeardown(
                    read_state(folder),
                    load_sam(project_root() / "template.yaml"),
                    local.client("s3"),
                    local.client("dynamodb"),
                    stop=lambda: stack_process.stop(folder),
                )
            plan = doer.plan(purge)
            if plan.already_deleted and not (plan.purge and plan.resources):
                console.print(f"stack {plan.stack_name} was deleted already")
                if plan.resources:
                    console.print(resources_table(KEPT, plan.resources))
                    console.print(later_purge(plan))
                else:
                    console.print("nothing it kept is left")
                return
            if not yes:
                if plan.kept:
                    console.print(resources_table("to keep (DeletionPolicy: Retain)", plan.kept))
                if not interactive():
                    raise click.ClickException(
                        "refusing to delete without confirmation: not run from a terminal; pass --yes to delete"
                    )
                if not click.confirm(question(plan), default=False):
                    raise click.ClickException("nothing was deleted")
            outcome = doer.execute(plan, lambda text: console.print(text, soft_wrap=True, markup=False))
        except teardown.TeardownError as exc:
            raise click.ClickException(str(exc)) from None
    console.print(f"stack {plan.stack_name} {'was deleted already' if plan.already_deleted else 'deleted'}")
    if outcome.removed:
        counts = {r.resource.logical_id: r.versions for r in outcome.removed if r.versions is not None}
        console.print(resources_table("deleted with their data", tuple(r.resource for r in outcome.removed), counts))
    if outcome.kept:
        console.print(resources_table(KEPT, outcome.kept))
        console.print(later_purge(plan))
    if plan.left_over:
        console.print(resources_table("left over (delete them yourself)", plan.left_over))
