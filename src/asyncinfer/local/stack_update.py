"""``asyncinfer deploy`` against the local stack: a parameter change applied as CloudFormation applies it.

CloudFormation replaces a ``AWS::SageMaker::Model`` or ``EndpointConfig`` whose properties change (they are
create-only), creating the new one first, calls ``UpdateEndpoint`` on the endpoint, waits for ``InService``, and
only then deletes the resources replaced; if the endpoint update fails it deletes what it created and the stack
stays as it was. :func:`plan_update` works out which of the template's resources a change of parameters touches;
:func:`apply_update` does the above against the local stack's moto, where the endpoint emulator carries out the
``UpdateEndpoint`` (new model container, TestNotification, FailureReason when the model does not start).

The local stack applies changes to these three resources only. A change that reaches another emulated resource
(a function's environment, a queue, the scalable target, …) is refused with the names of what it would change:
restart the local stack with the parameter instead. Resources the local stack does not emulate (IAM, alarms, …)
have nothing to apply and are listed as such.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from asyncinfer.local.lambda_wiring import resolved_props
from asyncinfer.local.moto_resources import MotoClients, create
from asyncinfer.local.physical_ids import generated_name
from asyncinfer.local.provision import EMULATED, INTERPRETED, resolve_stack
from asyncinfer.local.template import JSONValue, Resolver, Template, parameter_values, transform

if TYPE_CHECKING:
    from mypy_boto3_sagemaker import SageMakerClient

MODEL = "AWS::SageMaker::Model"
ENDPOINT_CONFIG = "AWS::SageMaker::EndpointConfig"
ENDPOINT = "AWS::SageMaker::Endpoint"
APPLIED = (MODEL, ENDPOINT_CONFIG, ENDPOINT)
# Updated in place, before the model (the Model depends on its execution role's policy), and enforced from then on.
POLICIES_APPLIED = ("AWS::IAM::Policy", "AWS::IAM::Role")

logger = logging.getLogger(__name__)


class UpdateRefused(RuntimeError):
    """The change cannot be applied to the running local stack; nothing was changed."""


class UpdateFailed(RuntimeError):
    """The update was tried and rolled back (as CloudFormation's UPDATE_ROLLBACK_COMPLETE); the message says why."""


@dataclass(frozen=True)
class UpdatePlan:
    parameters: dict[str, str]  # every parameter's value after the update
    replaced: list[str]  # logical ids of the Model / EndpointConfig to create anew
    endpoint_updated: list[str]  # logical ids of the endpoints to UpdateEndpoint
    not_applied: list[str] = field(default_factory=list)  # changed, but not emulated here (alarms, …)
    policies_changed: list[str] = field(default_factory=list)  # roles and policies whose documents change
    previous_parameters: dict[str, str] = field(default_factory=dict)  # to put the policies back on a rollback

    @property
    def empty(self) -> bool:
        return not self.replaced and not self.endpoint_updated and not self.policies_changed


@dataclass(frozen=True)
class UpdateResult:
    endpoint: str
    old_config: str
    new_config: str
    seconds: float


def _props(sam: Template, parameters: Mapping[str, str], stack: str, region: str) -> dict[str, tuple[str, JSONValue]]:
    """Each enabled resource's type and resolved properties. Physical ids only known once created (queue URLs,
    policy ARNs) are placeholders: the same on both sides of the comparison."""
    resolver, resources, enabled = resolve_stack(sam, parameters, stack, region)
    for logical in enabled:
        resolver.refs.setdefault(logical, f"<{logical}>")
        resolver.attrs.setdefault((logical, "QueueUrl"), f"<{logical}.QueueUrl>")
    return {
        logical: (str(resources[logical]["Type"]), resolved_props(resolver, logical, resources[logical]))
        for logical in enabled
    }


def plan_update(
    sam: Template, stack: str, region: str, current: Mapping[str, str], overrides: Mapping[str, str]
) -> UpdatePlan:
    """What changing ``overrides`` on a stack deployed with ``current`` parameters does (pure: no AWS call).
    Raises :class:`UpdateRefused` for a change the local stack cannot apply, and TemplateError for a value
    CloudFormation would refuse."""
    new_parameters = parameter_values(sam, {**current, **overrides})
    before = _props(sam, parameter_values(sam, current), stack, region)
    after = _props(sam, new_parameters, stack, region)
    changed = sorted(logical for logical in before.keys() | after.keys() if before.get(logical) != after.get(logical))
    kinds = {logical: (after.get(logical) or before[logical])[0] for logical in changed}
    emulated = set(EMULATED) | set(INTERPRETED)
    applied = set(APPLIED) | set(POLICIES_APPLIED)
    refused = [f"{logical} ({kinds[logical]})" for logical in changed if kinds[logical] in emulated - applied]
    added_or_removed = [
        logical
        for logical in changed
        if kinds[logical] in APPLIED and (logical not in before) != (logical not in after)
    ]
    if refused or added_or_removed:
        raise UpdateRefused(
            "the running local stack applies changes to the model, endpoint config and endpoint only; this one also "
            f"changes {', '.join(refused + added_or_removed)}. Restart it with the parameter: asyncinfer local down, "
            "then asyncinfer local up --parameter KEY=VALUE"
        )
    raw = transform_resources(sam, new_parameters, region)
    replaced = [logical for logical in changed if kinds[logical] == MODEL]
    _refuse_custom_names(raw, replaced)
    # A config naming a replaced model is replaced too (its ModelName changes), and an endpoint naming a replaced
    # config is updated.
    configs = [
        logical
        for logical, (kind, _) in after.items()
        if kind == ENDPOINT_CONFIG and (logical in changed or any(refers_to(raw[logical], m) for m in replaced))
    ]
    endpoints = [
        logical
        for logical, (kind, _) in after.items()
        if kind == ENDPOINT and (logical in changed or any(refers_to(raw[logical], c) for c in configs))
    ]
    _refuse_custom_names(raw, configs)
    return UpdatePlan(
        parameters=new_parameters,
        replaced=replaced + configs,
        endpoint_updated=endpoints,
        not_applied=[logical for logical in changed if kinds[logical] not in emulated],
        policies_changed=[logical for logical in changed if kinds[logical] in POLICIES_APPLIED],
        previous_parameters=parameter_values(sam, current),
    )


def _refuse_custom_names(resources: Mapping[str, Template], replaced: list[str]) -> None:
    for logical in replaced:
        props = resources[logical].get("Properties", {})
        if "ModelName" in props or "EndpointConfigName" in props:
            raise UpdateRefused(
                f"CloudFormation cannot update a stack when a custom-named resource requires replacing: {logical} "
                "has an explicit name; remove it from the template or rename it"
            )


def transform_resources(sam: Template, parameters: Mapping[str, str], region: str) -> dict[str, Template]:
    resources: dict[str, Template] = transform(sam, parameters, region)["Resources"]
    return resources


def refers_to(node: JSONValue, logical: str) -> bool:
    """Whether a template fragment refers to ``logical`` (Ref, Fn::GetAtt, or ${logical...} in Fn::Sub)."""
    if isinstance(node, dict):
        if node.get("Ref") == logical:
            return True
        att = node.get("Fn::GetAtt")
        if (isinstance(att, list) and att and att[0] == logical) or (
            isinstance(att, str) and att.split(".", 1)[0] == logical
        ):
            return True
        sub = node.get("Fn::Sub")
        text = sub[0] if isinstance(sub, list) and sub else sub
        if isinstance(text, str) and ("${" + logical + "}" in text or "${" + logical + "." in text):
            return True
        return any(refers_to(value, logical) for value in node.values())
    if isinstance(node, list):
        return any(refers_to(value, logical) for value in node)
    return False


def _fresh_name(base: str, props: JSONValue, taken: set[str]) -> str:
    # CloudFormation names a replacement anew (a generated name with a random part); a digest of the properties
    # here, with a counter if an earlier update left that name behind.
    digest = hashlib.sha256(json.dumps(props, sort_keys=True).encode()).hexdigest()[:10]
    name, n = f"{base[:52]}-{digest}", 1
    while name in taken:
        name, n = f"{base[:49]}-{digest}-{n}", n + 1
    return name


def apply_update(
    sam: Template,
    plan: UpdatePlan,
    clients: MotoClients,
    stack: str,
    region: str,
    *,
    timeout: float = 300.0,
    poll: float = 0.25,
    aws_endpoint_url: str | None = None,
) -> list[UpdateResult]:
    """Update the changed policies (enforced by the local stack's IAM at ``aws_endpoint_url``), create the
    replacements, UpdateEndpoint, wait for the endpoint, then delete what was replaced; on a failed or refused
    endpoint update, delete the replacements, put the policies back and raise :class:`UpdateFailed`."""
    if plan.empty:
        return []
    if plan.policies_changed and aws_endpoint_url:
        _apply_policies(sam, plan.parameters, clients, stack, region, aws_endpoint_url)
    try:
        return _apply_endpoint_updates(sam, plan, clients, stack, region, timeout, poll)
    except BaseException:
        if plan.policies_changed and aws_endpoint_url:
            _apply_policies(sam, plan.previous_parameters, clients, stack, region, aws_endpoint_url)
        raise


def _apply_policies(
    sam: Template, parameters: Mapping[str, str], clients: MotoClients, stack: str, region: str, url: str
) -> None:
    """The template's roles and resource policies under ``parameters``, enforced from now on."""
    from asyncinfer.local.iam.client import replace_policies
    from asyncinfer.local.iam.template_policies import iam_setup
    from asyncinfer.local.physical_ids import ACCOUNT
    from asyncinfer.local.stack_iam import model_bucket_accounts

    resolver, resources, enabled = resolve_stack(sam, parameters, stack, region)
    for logical in enabled:  # queue policies name their queues by URL, known to SQS
        if resources[logical]["Type"] == "AWS::SQS::Queue":
            name = str(resolver.attrs[(logical, "QueueName")])
            resolver.refs[logical] = clients.sqs.get_queue_url(QueueName=name)["QueueUrl"]
    setup = iam_setup(resolver, resources, enabled, ACCOUNT, region)
    setup.bucket_accounts = model_bucket_accounts(parameters)
    replace_policies(url, setup)


def _apply_endpoint_updates(
    sam: Template, plan: UpdatePlan, clients: MotoClients, stack: str, region: str, timeout: float, poll: float
) -> list[UpdateResult]:
    if not plan.endpoint_updated:
        return []
    sagemaker = clients.sagemaker
    resolver, resources, _enabled = resolve_stack(sam, plan.parameters, stack, region)
    created: list[tuple[str, str]] = []  # (kind, name) in creation order
    updating: list[str] = []  # endpoints whose UpdateEndpoint was accepted and is not over
    results = []
    try:
        for logical in plan.endpoint_updated:
            endpoint = str(resolver.get_att(logical, "EndpointName"))
            old_config, old_models = _deployed(sagemaker, endpoint)
            # The resources not replaced keep their deployed names; replaced ones get new names.
            for model_logical in (r for r in resources if resources[r]["Type"] == MODEL):
                _rename(resolver, model_logical, "ModelName", old_models[0])
            _rename(resolver, _config_of(resources, logical), "EndpointConfigName", old_config)
            for kind in (MODEL, ENDPOINT_CONFIG):
                for replaced in (r for r in plan.replaced if resources[r]["Type"] == kind):
                    props = resolved_props(resolver, replaced, resources[replaced])
                    key = "ModelName" if kind == MODEL else "EndpointConfigName"
                    name = _fresh_name(generated_name(stack, replaced), props, _existing(sagemaker, kind))
                    _rename(resolver, replaced, key, name)
                    create(clients, resolver, replaced, kind, props)
                    created.append((kind, name))
            props = resolved_props(resolver, logical, resources[logical])
            new_config = str(props["EndpointConfigName"])
            started = time.monotonic()
            try:
                sagemaker.update_endpoint(
                    EndpointName=endpoint,
                    EndpointConfigName=new_config,
                    RetainAllVariantProperties=_true(props.get("RetainAllVariantProperties", False)),
                )
            except ClientError as exc:
                raise UpdateFailed(
                    f"UpdateEndpoint {endpoint} was refused: {exc.response['Error']['Message']}"
                ) from exc
            updating.append(endpoint)
            status = _wait(sagemaker, endpoint, timeout, poll)
            if status["EndpointStatus"] == "Updating":
                raise UpdateFailed(
                    f"endpoint {endpoint} is still Updating after {timeout:.0f} s (is the local stack's endpoint "
                    "emulator running?); what the update uses was left in place"
                )
            updating.remove(endpoint)
            if status["EndpointStatus"] != "InService" or status["EndpointConfigName"] != new_config:
                reason = status.get("FailureReason") or f"the endpoint is {status['EndpointStatus']}"
                raise UpdateFailed(f"endpoint {endpoint} did not take {new_config}: {reason}")
            results.append(UpdateResult(endpoint, old_config, new_config, time.monotonic() - started))
            # Cleanup, once the endpoint serves the new config: what was replaced goes.
            _delete_unused(sagemaker, [(ENDPOINT_CONFIG, old_config)] + [(MODEL, m) for m in old_models])
    except BaseException:
        # Delete what this update created, unless an endpoint may still be taking it: deleting the config of an
        # update in progress is what AWS tells you never to do (and an interrupted wait is not a failed update).
        if not any(_status(sagemaker, e) == "Updating" for e in updating):
            done = {r.new_config for r in results}
            _delete_unused(sagemaker, [(kind, name) for kind, name in reversed(created) if name not in done])
        raise
    return results


def _true(value: JSONValue) -> bool:
    """A CloudFormation boolean: true/false, or their strings."""
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _status(sagemaker: SageMakerClient, endpoint: str) -> str:
    try:
        return sagemaker.describe_endpoint(EndpointName=endpoint)["EndpointStatus"]
    except ClientError:
        return "Unknown"


def _delete_unused(sagemaker: SageMakerClient, resources: list[tuple[str, str]]) -> None:
    """Delete each config and model no endpoint uses (now or in an update in progress); a failure is logged."""
    in_use = _in_use(sagemaker)
    for kind, name in resources:
        if name in in_use:
            continue
        try:
            if kind == ENDPOINT_CONFIG:
                sagemaker.delete_endpoint_config(EndpointConfigName=name)
            else:
                sagemaker.delete_model(ModelName=name)
        except ClientError as exc:
            logger.warning("could not delete %s %s: %s", kind, name, exc)


def _config_of(resources: Mapping[str, Template], endpoint: str) -> str:
    """The logical id of the endpoint config an endpoint names."""
    (logical,) = [
        name
        for name, resource in resources.items()
        if resource["Type"] == ENDPOINT_CONFIG and refers_to(resources[endpoint].get("Properties", {}), name)
    ]
    return logical


def _rename(resolver: Resolver, logical: str, key: str, name: str) -> None:
    resolver.attrs[(logical, key)] = name
    path = "model" if key == "ModelName" else "endpoint-config"
    region, account = resolver.pseudo["AWS::Region"], resolver.pseudo["AWS::AccountId"]
    resolver.refs[logical] = f"arn:aws:sagemaker:{region}:{account}:{path}/{name.lower()}"


def _deployed(sagemaker: SageMakerClient, endpoint: str) -> tuple[str, list[str]]:
    config = sagemaker.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"]
    variants = sagemaker.describe_endpoint_config(EndpointConfigName=config)["ProductionVariants"]
    return config, [v["ModelName"] for v in variants if v.get("ModelName")]


def _existing(sagemaker: SageMakerClient, kind: str) -> set[str]:
    if kind == MODEL:
        pages = sagemaker.get_paginator("list_models").paginate()
        return {m["ModelName"] for page in pages for m in page["Models"]}
    configs = sagemaker.get_paginator("list_endpoint_configs").paginate()
    return {c["EndpointConfigName"] for page in configs for c in page["EndpointConfigs"]}


def _in_use(sagemaker: SageMakerClient) -> set[str]:
    """The configs and models of every endpoint, those of updates in progress included."""
    used: set[str] = set()
    for page in sagemaker.get_paginator("list_endpoints").paginate():
        for summary in page["Endpoints"]:
            endpoint = sagemaker.describe_endpoint(EndpointName=summary["EndpointName"])
            configs = {endpoint["EndpointConfigName"]}
            if endpoint.get("PendingDeploymentSummary"):
                configs.add(endpoint["PendingDeploymentSummary"]["EndpointConfigName"])
            for config in configs:
                used.add(config)
                try:
                    variants = sagemaker.describe_endpoint_config(EndpointConfigName=config)["ProductionVariants"]
                except ClientError:
                    continue
                used.update(v["ModelName"] for v in variants if v.get("ModelName"))
    return used


def _wait(sagemaker: SageMakerClient, endpoint: str, timeout: float, poll: float) -> dict[str, str]:
    """DescribeEndpoint until the update is over (as CloudFormation waits); the last status seen."""
    deadline = time.monotonic() + timeout
    while True:
        described = sagemaker.describe_endpoint(EndpointName=endpoint)
        status = {
            "EndpointStatus": described["EndpointStatus"],
            "EndpointConfigName": described["EndpointConfigName"],
            "FailureReason": described.get("FailureReason", ""),
        }
        if described["EndpointStatus"] != "Updating" or time.monotonic() > deadline:
            return status
        time.sleep(poll)


def update_running_stack(
    state_dir: Path, template: Path, overrides: Mapping[str, str], *, dry_run: bool = False, timeout: float = 300.0
) -> tuple[UpdatePlan, list[UpdateResult]]:
    """Plan, and unless ``dry_run`` apply, ``overrides`` on the local stack whose state is in ``state_dir``; its
    recorded parameters follow a successful update."""
    from asyncinfer.local.stack import session, update_state
    from asyncinfer.local.template import load_sam

    state = _state(state_dir)
    stack, region = str(state["stack_name"]), str(state["region"])
    clients = MotoClients.of(session(region), str(state["aws_endpoint_url"]), region)
    endpoint = state["outputs"].get("EndpointName", "")
    if endpoint and _status(clients.sagemaker, endpoint) == "Updating":
        raise UpdateRefused(f"endpoint {endpoint} is being updated: wait until it is InService, then deploy again")
    sam = load_sam(template)
    plan = plan_update(sam, stack, region, state["parameters"], overrides)
    if dry_run:
        return plan, []
    url = str(state["aws_endpoint_url"])
    results = apply_update(sam, plan, clients, stack, region, timeout=timeout, aws_endpoint_url=url)
    update_state(state_dir, parameters=plan.parameters)
    return plan, results


def _state(state_dir: Path) -> dict[str, Any]:  # the state file's JSON
    from asyncinfer.local.stack import StackError, read_state

    state = read_state(state_dir)
    if "parameters" not in state:
        raise StackError("this local stack predates asyncinfer deploy: restart it (asyncinfer local down, local up)")
    return state


def check_parameters(state_dir: Path, template: Path, overrides: Mapping[str, str]) -> None:
    """Refuse, before anything is uploaded, values CloudFormation would refuse (TemplateError)."""
    from asyncinfer.local.template import load_sam

    parameter_values(load_sam(template), {**_state(state_dir)["parameters"], **overrides})
