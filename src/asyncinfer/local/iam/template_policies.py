"""The template's IAM, as the local stack enforces it: each role's policies (inline ``Policies`` and the
``AWS::IAM::Policy`` resources attached to it) and each resource's policy (bucket, queue and topic policies, and the
Lambda permissions S3 and SNS need), resolved after provisioning so that every reference has its physical value."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from asyncinfer.local.iam.policies import Policy, PolicyError, parse_policy
from asyncinfer.local.lambda_wiring import resolved_props
from asyncinfer.local.template import JSONValue, Resolver, Template, TemplateError


@dataclass
class RoleSpec:
    logical_id: str
    arn: str
    policies: dict[str, JSONValue]  # "RoleLogicalId/PolicyName" → document
    managed_policy_arns: list[str] = field(default_factory=list)  # not enforced locally: they grant nothing here


@dataclass
class ResourcePolicySpec:
    name: str  # the logical id of the policy (or of the Lambda permission)
    resources: list[str]  # the ARNs it governs (a bucket's policy governs the bucket and its objects)
    document: JSONValue


@dataclass
class IamSetup:
    account: str
    region: str
    roles: dict[str, RoleSpec] = field(default_factory=dict)  # by role ARN
    resource_policies: list[ResourcePolicySpec] = field(default_factory=list)
    function_roles: dict[str, str] = field(default_factory=dict)  # function logical id → role ARN
    execution_roles: dict[str, str] = field(default_factory=dict)  # endpoint name → its model's execution role ARN
    # Buckets the local stack's one account stands in for another account's (s3:ResourceAccount is theirs).
    bucket_accounts: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> IamSetup:
        return cls(
            account=data["account"],
            region=data["region"],
            roles={arn: RoleSpec(**spec) for arn, spec in data["roles"].items()},
            resource_policies=[ResourcePolicySpec(**spec) for spec in data["resource_policies"]],
            function_roles=dict(data["function_roles"]),
            execution_roles=dict(data["execution_roles"]),
            bucket_accounts=dict(data.get("bucket_accounts", {})),
        )

    def identity_policies(self, role_arn: str) -> list[Policy]:
        spec = self.roles.get(role_arn)
        if spec is None:
            return []
        return [parse_policy(name, doc) for name, doc in spec.policies.items()]

    def resource_policy_documents(self) -> list[tuple[ResourcePolicySpec, Policy]]:
        return [(spec, parse_policy(spec.name, spec.document, resource_policy=True)) for spec in self.resource_policies]


def _queue_arn(resolver: Resolver, url: str) -> str:
    for logical, ref in resolver.refs.items():
        if ref == url and (logical, "Arn") in resolver.attrs:
            return str(resolver.attrs[(logical, "Arn")])
    return str(url)


def _function_arn(resolver: Resolver, name: str) -> str:
    if str(name).startswith("arn:"):
        return str(name)
    for logical, ref in resolver.refs.items():
        if ref == name and (logical, "Arn") in resolver.attrs:
            return str(resolver.attrs[(logical, "Arn")])
    raise TemplateError(f"no function named {name}")


def _permission_statement(logical: str, props: Template, function_arn: str) -> dict[str, JSONValue]:
    """A Lambda permission as Lambda writes it into the function's policy (GetPolicy)."""
    principal = str(props["Principal"])
    statement: dict[str, JSONValue] = {
        "Sid": logical,
        "Effect": "Allow",
        "Principal": {"Service": principal} if principal.endswith(".amazonaws.com") else {"AWS": principal},
        "Action": props["Action"],
        "Resource": function_arn,
    }
    condition: dict[str, JSONValue] = {}
    if "SourceArn" in props:
        condition["ArnLike"] = {"AWS:SourceArn": props["SourceArn"]}
    if "SourceAccount" in props:
        condition["StringEquals"] = {"AWS:SourceAccount": props["SourceAccount"]}
    if condition:
        statement["Condition"] = condition
    return statement


def iam_setup(
    resolver: Resolver, resources: Mapping[str, Template], enabled: list[str], account: str, region: str
) -> IamSetup:
    """The template's roles and resource policies; TemplateError for a policy IAM would refuse."""
    setup = IamSetup(account=account, region=region)
    by_type: dict[str, list[str]] = {}
    for logical in enabled:
        by_type.setdefault(resources[logical]["Type"], []).append(logical)
    role_by_name: dict[str, str] = {}
    for logical in by_type.get("AWS::IAM::Role", []):
        props = resolved_props(resolver, logical, resources[logical])
        arn = str(resolver.attrs[(logical, "Arn")])
        role_by_name[str(resolver.refs[logical])] = arn
        policies = {f"{logical}/{p['PolicyName']}": p["PolicyDocument"] for p in props.get("Policies", [])}
        setup.roles[arn] = RoleSpec(logical, arn, policies, list(props.get("ManagedPolicyArns", [])))
    for logical in by_type.get("AWS::IAM::Policy", []):
        props = resolved_props(resolver, logical, resources[logical])
        for role in props.get("Roles", []):
            if role in role_by_name:
                setup.roles[role_by_name[role]].policies[f"{logical}/{props['PolicyName']}"] = props["PolicyDocument"]
    for logical in by_type.get("AWS::S3::BucketPolicy", []):
        props = resolved_props(resolver, logical, resources[logical])
        bucket = f"arn:aws:s3:::{props['Bucket']}"
        setup.resource_policies.append(ResourcePolicySpec(logical, [bucket, f"{bucket}/*"], props["PolicyDocument"]))
    for logical in by_type.get("AWS::SQS::QueuePolicy", []):
        props = resolved_props(resolver, logical, resources[logical])
        queues = [_queue_arn(resolver, url) for url in props["Queues"]]
        setup.resource_policies.append(ResourcePolicySpec(logical, queues, props["PolicyDocument"]))
    for logical in by_type.get("AWS::SNS::TopicPolicy", []):
        props = resolved_props(resolver, logical, resources[logical])
        setup.resource_policies.append(ResourcePolicySpec(logical, list(props["Topics"]), props["PolicyDocument"]))
    for logical in by_type.get("AWS::Lambda::Permission", []):
        props = resolved_props(resolver, logical, resources[logical])
        function_arn = _function_arn(resolver, props["FunctionName"])
        document = {"Version": "2012-10-17", "Statement": [_permission_statement(logical, props, function_arn)]}
        setup.resource_policies.append(ResourcePolicySpec(logical, [function_arn], document))
    for logical in by_type.get("AWS::Lambda::Function", []):
        props = resolved_props(resolver, logical, resources[logical])
        setup.function_roles[logical] = str(props["Role"])
    for logical in by_type.get("AWS::SageMaker::Endpoint", []):
        endpoint = str(resolver.attrs[(logical, "EndpointName")])
        role = _execution_role(resolver, resources, enabled, resolved_props(resolver, logical, resources[logical]))
        if role:
            setup.execution_roles[endpoint] = role
    try:  # refuse now what IAM would refuse at deploy time
        for arn in setup.roles:
            setup.identity_policies(arn)
        setup.resource_policy_documents()
    except PolicyError as exc:
        raise TemplateError(str(exc)) from exc
    return setup


def _execution_role(
    resolver: Resolver, resources: Mapping[str, Template], enabled: list[str], endpoint: Template
) -> str | None:
    config = str(endpoint.get("EndpointConfigName", ""))
    for logical in enabled:
        if resources[logical]["Type"] != "AWS::SageMaker::EndpointConfig":
            continue
        if resolver.attrs.get((logical, "EndpointConfigName")) != config:
            continue
        variants = resolved_props(resolver, logical, resources[logical]).get("ProductionVariants", [])
        model = str(variants[0]["ModelName"]) if variants else ""
        for candidate in enabled:
            if resources[candidate]["Type"] == "AWS::SageMaker::Model" and (
                resolver.attrs.get((candidate, "ModelName")) == model
            ):
                return str(resolved_props(resolver, candidate, resources[candidate])["ExecutionRoleArn"])
    return None
