"""``asyncinfer deploy``: the model under its content-addressed key, then the stack update that makes the endpoint
serve it: ``sam build`` and ``sam deploy`` with ``--stack-name``, the local stack's own update without."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from asyncinfer.cli.app import errors, key_values, project_root, state_dir
from asyncinfer.cli.display import console

if TYPE_CHECKING:
    import boto3
    from mypy_boto3_s3 import S3Client


@click.command()
@click.option("--dry-run", is_flag=True, help="Say what would be uploaded and changed; change nothing.")
@click.option("--model-data-url", default=None, help="A model.tar.gz already in S3 (e.g. a previous one: rollback).")
@click.option(
    "--model-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Your model.tar.gz on disk, uploaded under its SHA-256.",
)
@click.option("--demo-model", is_flag=True, help="The demo model, trained now (what a new stack gets by default).")
@click.option("--parameter", "parameters", multiple=True, metavar="KEY=VALUE", help="Template parameter override.")
@click.pass_context
def deploy(
    ctx: click.Context,
    dry_run: bool,
    model_data_url: str | None,
    model_file: Path | None,
    demo_model: bool,
    parameters: tuple[str, ...],
) -> None:
    """Ship a model and parameter changes: to the stack --stack-name names, or to the running local stack.

    Each artifact is uploaded once, under a key made of its SHA-256, and never overwritten: a new model is a new
    ModelDataUrl, hence a new Model and EndpointConfig and an UpdateEndpoint; rolling back is deploying the previous
    URL with --model-data-url. Without a model option the deployed model stays (a new stack gets the demo model).
    """
    if sum((model_data_url is not None, model_file is not None, demo_model)) > 1:
        raise click.UsageError("give one of --model-data-url, --model-file, --demo-model")
    overrides = key_values(parameters)
    if "ModelDataUrl" in overrides:
        raise click.UsageError("give the model with --model-data-url or --model-file, not --parameter ModelDataUrl")
    source = _ModelSource(model_data_url, model_file, demo_model, dry_run)
    if ctx.obj["stack_name"]:
        _deploy_to_aws(ctx, source, overrides)
    else:
        _deploy_locally(source, overrides)


class _ModelSource:
    """Which model the deploy ships: a URL as given, an artifact uploaded now, or (None) the deployed one."""

    def __init__(self, url: str | None, file: Path | None, demo: bool, dry_run: bool) -> None:
        self.url, self.file, self.demo, self.dry_run = url, file, demo, dry_run

    @property
    def given(self) -> bool:
        """Whether the user said which model (else the deployed one stays, or a new stack gets the demo)."""
        return self.url is not None or self.file is not None or self.demo

    def resolve(self, s3: S3Client, region: str, account: Callable[[], str], *, new_stack: bool) -> str | None:
        from asyncinfer import deploy as deploying
        from asyncinfer import model_artifacts

        if self.url is not None:
            return self.url
        if self.file is None and not self.demo and not new_stack:
            return None
        with deploying.model_artifact(self.file) as artifact:
            if self.dry_run:
                bucket = model_artifacts.default_bucket(region, account())
                url = f"s3://{bucket}/{model_artifacts.content_key(model_artifacts.sha256_of(artifact))}"
                console.print(f"would upload {artifact.name} to {url} (unless already there)", soft_wrap=True)
                return url
            try:
                upload = deploying.upload_model(s3, region, account(), artifact)
            except model_artifacts.ArtifactError as exc:
                raise click.ClickException(str(exc)) from None
        console.print(f"{'uploaded' if upload.created else 'already uploaded'}: {upload.url}", soft_wrap=True)
        return upload.url


def _deploy_locally(source: _ModelSource, overrides: dict[str, str]) -> None:
    from asyncinfer import target
    from asyncinfer.local import stack_update
    from asyncinfer.local.template import TemplateError

    template = project_root() / "template.yaml"
    with errors():
        stack = target.local(state_dir())
        try:
            stack_update.check_parameters(state_dir(), template, overrides)  # before anything is uploaded
            url = source.resolve(
                stack.client("s3"),
                stack.region,
                lambda: stack.client("sts").get_caller_identity()["Account"],
                new_stack=False,
            )
            if url is not None:
                overrides = {"ModelDataUrl": url, **overrides}
            plan, results = stack_update.update_running_stack(state_dir(), template, overrides, dry_run=source.dry_run)
        except (stack_update.UpdateRefused, stack_update.UpdateFailed, TemplateError) as exc:
            raise click.ClickException(str(exc)) from None
    if plan.empty:
        console.print(f"no change: the local stack already serves {plan.parameters['ModelDataUrl']}", soft_wrap=True)
    else:
        verb = "would replace" if source.dry_run else "replaced"
        console.print(f"{verb}: {', '.join(plan.replaced)}; UpdateEndpoint: {', '.join(plan.endpoint_updated)}")
    if plan.not_applied:
        console.print(f"not emulated locally, nothing to apply: {', '.join(plan.not_applied)}", soft_wrap=True)
    for result in results:
        console.print(
            f"endpoint {result.endpoint}: {result.old_config} → {result.new_config}, InService after "
            f"{result.seconds:.1f} s",
            soft_wrap=True,
        )


def _deploy_to_aws(ctx: click.Context, source: _ModelSource, overrides: dict[str, str]) -> None:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    from asyncinfer import deploy as deploying
    from asyncinfer import instance_type

    stack_name = ctx.obj["stack_name"]
    session = boto3.Session(region_name=ctx.obj["region"])
    region = session.region_name
    if not region:
        raise click.UsageError("no region: pass --region or configure one (AWS_REGION, ~/.aws/config)")
    # A dry run that names its model needs no AWS call (nor credentials).
    deployed = _deployed(session, stack_name, source.dry_run) if not (source.dry_run and source.given) else None
    reason = instance_type.refusal(stack_name, deployed, overrides)  # before anything is uploaded
    if reason is not None and not source.dry_run:
        raise click.ClickException(reason)

    def account() -> str:
        try:
            return deploying.account_of(session)
        except (BotoCoreError, ClientError) as exc:
            if not source.dry_run:
                raise click.ClickException(f"cannot find your AWS account (credentials?): {exc}") from None
            return "<account>"

    with errors():
        try:
            url = source.resolve(session.client("s3"), region, account, new_stack=deployed is None)
            if url is None and deployed is not None:
                kept = deployed.get("ModelDataUrl") or "(the template's default)"
                console.print(f"keeping the deployed model: {kept}", soft_wrap=True)
            steps = deploying.plan(stack_name, region, url, overrides, project_root() / "template.yaml")
            for command in steps.commands:
                console.print("$ " + " ".join(command), markup=False, highlight=False, soft_wrap=True)
            if not source.dry_run:
                deploying.run(steps, project_root())
        except deploying.DeployError as exc:
            raise click.ClickException(str(exc)) from None


def _deployed(session: boto3.Session, stack_name: str, dry_run: bool) -> dict[str, str] | None:
    """The deployed stack's parameters (None: no such stack). A dry run without credentials assumes a new stack."""
    from botocore.exceptions import BotoCoreError, ClientError

    from asyncinfer import instance_type

    try:
        return instance_type.deployed_parameters(session, stack_name)
    except (BotoCoreError, ClientError) as exc:
        if dry_run:
            return None
        raise click.ClickException(f"cannot read the stack {stack_name} (credentials?): {exc}") from None
