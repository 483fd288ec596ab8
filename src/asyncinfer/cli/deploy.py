"""``asyncinfer deploy``: the model under its content-addressed key, then the stack update that makes the endpoint
serve it: ``sam build`` and ``sam deploy`` with ``--stack-name``, the local stack's own update without."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from asyncinfer.cli.app import errors, key_values, project_root, state_dir
from asyncinfer.cli.display import console

if TYPE_CHECKING:
    import boto3


@click.command()
@click.option("--dry-run", is_flag=True, help="Say what would be uploaded and changed; change nothing.")
@click.option("--model-data-url", default=None, help="A model.tar.gz already in S3 (e.g. a previous one: rollback).")
@click.option(
    "--model-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Your model.tar.gz on disk, uploaded under its SHA-256 (default: the demo model).",
)
@click.option("--parameter", "parameters", multiple=True, metavar="KEY=VALUE", help="Template parameter override.")
@click.pass_context
def deploy(
    ctx: click.Context, dry_run: bool, model_data_url: str | None, model_file: Path | None, parameters: tuple[str, ...]
) -> None:
    """Ship a model (and parameter changes): to the stack --stack-name names, or to the running local stack.

    Each artifact is uploaded once, under a key made of its SHA-256, and never overwritten: a new model is a new
    ModelDataUrl, hence a new Model and EndpointConfig and an UpdateEndpoint; rolling back is deploying the previous
    URL with --model-data-url.
    """
    if model_data_url is not None and model_file is not None:
        raise click.UsageError("give --model-data-url or --model-file, not both")
    overrides = key_values(parameters)
    if "ModelDataUrl" in overrides:
        raise click.UsageError("give the model with --model-data-url or --model-file, not --parameter ModelDataUrl")
    if ctx.obj["stack_name"]:
        _deploy_to_aws(ctx, dry_run, model_data_url, model_file, overrides)
    else:
        _deploy_locally(dry_run, model_data_url, model_file, overrides)


def _deploy_locally(
    dry_run: bool, model_data_url: str | None, model_file: Path | None, overrides: dict[str, str]
) -> None:
    from asyncinfer import deploy as deploying
    from asyncinfer import target
    from asyncinfer.local import stack_update
    from asyncinfer.local.template import TemplateError

    with errors():
        stack = target.local(state_dir())
        if model_data_url is None:
            with deploying.model_artifact(model_file) as artifact:
                account = stack.client("sts").get_caller_identity()["Account"]
                if dry_run:
                    model_data_url = _would_upload(artifact, stack.region, account)
                else:
                    upload = deploying.upload_model(stack.client("s3"), stack.region, account, artifact)
                    model_data_url = upload.url
                    console.print(
                        f"{'uploaded' if upload.created else 'already uploaded'}: {upload.url}", soft_wrap=True
                    )
        try:
            plan, results = stack_update.update_running_stack(
                state_dir(),
                project_root() / "template.yaml",
                {"ModelDataUrl": model_data_url, **overrides},
                dry_run=dry_run,
            )
        except (stack_update.UpdateRefused, stack_update.UpdateFailed, TemplateError) as exc:
            raise click.ClickException(str(exc)) from None
    if plan.empty:
        console.print(f"no change: the local stack already serves {model_data_url}", soft_wrap=True)
    else:
        verb = "would replace" if dry_run else "replaced"
        console.print(f"{verb}: {', '.join(plan.replaced)}; UpdateEndpoint: {', '.join(plan.endpoint_updated)}")
    if plan.not_applied:
        console.print(f"not emulated locally, nothing to apply: {', '.join(plan.not_applied)}", soft_wrap=True)
    for result in results:
        console.print(
            f"endpoint {result.endpoint}: {result.old_config} → {result.new_config}, InService after "
            f"{result.seconds:.1f} s",
            soft_wrap=True,
        )


def _would_upload(artifact: Path, region: str, account: str) -> str:
    from asyncinfer import model_artifacts

    bucket = model_artifacts.default_bucket(region, account)
    url = f"s3://{bucket}/{model_artifacts.content_key(model_artifacts.sha256_of(artifact))}"
    console.print(f"would upload {artifact.name} to {url} (unless already there)", soft_wrap=True)
    return url


def _deploy_to_aws(
    ctx: click.Context, dry_run: bool, model_data_url: str | None, model_file: Path | None, overrides: dict[str, str]
) -> None:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    from asyncinfer import deploy as deploying

    stack_name = ctx.obj["stack_name"]
    session = boto3.Session(region_name=ctx.obj["region"])
    region = session.region_name
    if not region:
        raise click.UsageError("no region: pass --region or configure one (AWS_REGION, ~/.aws/config)")
    if not dry_run:
        _refuse_what_aws_refuses(session, stack_name, overrides)
    with errors():
        try:
            if model_data_url is None:
                with deploying.model_artifact(model_file) as artifact:
                    try:
                        account = deploying.account_of(session)
                    except (BotoCoreError, ClientError) as exc:
                        if not dry_run:
                            raise click.ClickException(f"cannot find your AWS account (credentials?): {exc}") from None
                        account = "<account>"
                    if dry_run:
                        model_data_url = _would_upload(artifact, region, account)
                    else:
                        upload = deploying.upload_model(session.client("s3"), region, account, artifact)
                        model_data_url = upload.url
                        console.print(
                            f"{'uploaded' if upload.created else 'already uploaded'}: {upload.url}", soft_wrap=True
                        )
            steps = deploying.plan(stack_name, region, model_data_url, overrides, project_root() / "template.yaml")
            for command in steps.commands:
                console.print("$ " + " ".join(command), markup=False, highlight=False, soft_wrap=True)
            if not dry_run:
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
