"""``asyncinfer deploy``: the demo model where the template expects it, then ``sam build`` and ``sam deploy``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from asyncinfer.cli.app import errors, key_values, project_root
from asyncinfer.cli.display import console

if TYPE_CHECKING:
    import boto3


@click.command()
@click.option("--dry-run", is_flag=True, help="Print the upload and the SAM commands; run nothing.")
@click.option("--model-data-url", default=None, help="Your model.tar.gz in S3 (default: the demo one).")
@click.option("--parameter", "parameters", multiple=True, metavar="KEY=VALUE", help="Template parameter override.")
@click.pass_context
def deploy(ctx: click.Context, dry_run: bool, model_data_url: str | None, parameters: tuple[str, ...]) -> None:
    """Upload the demo model where the template expects it, then `sam build` and `sam deploy` (needs --stack-name)."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    from asyncinfer import deploy as deploying

    stack_name = ctx.obj["stack_name"]
    if not stack_name:
        raise click.UsageError("deploy needs --stack-name: asyncinfer --stack-name NAME [--region R] deploy")
    overrides = key_values(parameters)
    session = boto3.Session(region_name=ctx.obj["region"])
    region = session.region_name
    if not region:
        raise click.UsageError("no region: pass --region or configure one (AWS_REGION, ~/.aws/config)")
    upload: tuple[str, str] | None = None
    if model_data_url is None:
        try:
            upload = deploying.default_model_location(session)
        except (BotoCoreError, ClientError) as exc:
            if not dry_run:
                raise click.ClickException(f"cannot find your AWS account (credentials?): {exc}") from None
            upload = (f"sagemaker-{region}-<account>", deploying.MODEL_KEY)
        model_data_url = f"s3://{upload[0]}/{upload[1]}"
    if not dry_run:
        _refuse_what_aws_refuses(session, stack_name, overrides)
    steps = deploying.plan(stack_name, region, model_data_url, overrides, project_root() / "template.yaml")
    if upload is not None:
        console.print(
            f"{'would upload' if dry_run else 'uploading'} the demo model to {model_data_url}", soft_wrap=True
        )
    for command in steps.commands:
        console.print("$ " + " ".join(command), markup=False, highlight=False, soft_wrap=True)
    if dry_run:
        return
    with errors():
        try:
            if upload is not None:
                deploying.upload_demo_model(session, *upload)
            deploying.run(steps, project_root())
        except deploying.DeployError as exc:
            raise click.ClickException(str(exc)) from None


def _refuse_what_aws_refuses(session: boto3.Session, stack_name: str, overrides: dict[str, str]) -> None:
    """Stop before any upload when the update would fail on AWS (asyncinfer.instance_type)."""
    from botocore.exceptions import BotoCoreError, ClientError

    from asyncinfer import instance_type

    try:
        deployed = instance_type.deployed_parameters(session, stack_name)
    except (BotoCoreError, ClientError) as exc:
        raise click.ClickException(f"cannot read the stack {stack_name} (credentials?): {exc}") from None
    reason = instance_type.refusal(stack_name, deployed, overrides)
    if reason is not None:
        raise click.ClickException(reason)
