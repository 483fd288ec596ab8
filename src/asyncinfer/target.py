"""Which stack a command works on: the local stack (its state file) or a deployed one (its CloudFormation outputs).

Everything after this point (uploads, job queries, result events) is the same code for both.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, overload

import boto3

if TYPE_CHECKING:
    from botocore.client import BaseClient
    from mypy_boto3_cloudformation import CloudFormationClient
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sagemaker import SageMakerClient
    from mypy_boto3_sagemaker_runtime import SageMakerRuntimeClient
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sts import STSClient

from asyncinfer.local.stack import StackError, read_state, session
from asyncinfer.local.time_scale import emulated_now

Service = Literal[
    "application-autoscaling",
    "cloudformation",
    "cloudwatch",
    "dynamodb",
    "events",
    "lambda",
    "s3",
    "sagemaker",
    "sagemaker-runtime",
    "sns",
    "sqs",
    "sts",
]
REQUIRED_OUTPUTS = (
    "InputBucketName",
    "OutputBucketName",
    "SuccessTopicArn",
    "ErrorTopicArn",
    "EndpointName",
    "JobsTableName",
    "EventBusName",
    "ResultsQueueUrl",
    "DeadLetterQueueUrl",
)


@dataclass
class Target:
    name: str
    region: str
    outputs: dict[str, str]
    endpoint_url: str | None = None  # None: real AWS with the default credential chain
    sagemaker_runtime_url: str | None = None
    lambda_url: str | None = None
    state_dir: Path | None = None  # the local stack's state folder (None: a deployed stack)
    # The local stack's clock (local/time_scale.py): its CloudWatch timestamps and scaling times run time_scale times
    # faster than real time from time_anchor on. A deployed stack: real time.
    time_scale: float = 1.0
    time_anchor: float | None = None
    instance_start_seconds: float | None = None  # the local stack's; unknown on AWS
    parameters: dict[str, str] | None = None  # the stack's parameter values, when known
    _session: boto3.Session | None = None

    @overload
    def client(self, service: Literal["application-autoscaling", "cloudwatch"]) -> Any: ...  # no stubs installed
    @overload
    def client(self, service: Literal["cloudformation"]) -> CloudFormationClient: ...
    @overload
    def client(self, service: Literal["dynamodb"]) -> DynamoDBClient: ...
    @overload
    def client(self, service: Literal["events"]) -> EventBridgeClient: ...
    @overload
    def client(self, service: Literal["lambda"]) -> LambdaClient: ...
    @overload
    def client(self, service: Literal["s3"]) -> S3Client: ...
    @overload
    def client(self, service: Literal["sagemaker"]) -> SageMakerClient: ...
    @overload
    def client(self, service: Literal["sagemaker-runtime"]) -> SageMakerRuntimeClient: ...
    @overload
    def client(self, service: Literal["sns"]) -> SNSClient: ...
    @overload
    def client(self, service: Literal["sqs"]) -> SQSClient: ...
    @overload
    def client(self, service: Literal["sts"]) -> STSClient: ...
    def client(self, service: Service) -> BaseClient:
        if self._session is None:
            self._session = session(self.region) if self.endpoint_url else boto3.Session(region_name=self.region)
        if service == "sagemaker-runtime" and self.sagemaker_runtime_url:
            return self._session.client(service, endpoint_url=self.sagemaker_runtime_url)
        if service == "lambda" and self.lambda_url:
            return self._session.client(service, endpoint_url=self.lambda_url)
        return self._session.client(service, endpoint_url=self.endpoint_url)

    @property
    def is_local(self) -> bool:
        return self.endpoint_url is not None

    def now(self) -> float:
        """The stack's time now, in seconds since the epoch (the local stack's emulated time)."""
        real = time.time()
        return real if self.time_anchor is None else emulated_now(self.time_anchor, self.time_scale, real)


def local(state_dir: Path) -> Target:
    state = read_state(state_dir)
    return Target(
        name=state["stack_name"],
        region=state["region"],
        outputs=state["outputs"],
        endpoint_url=state["aws_endpoint_url"],
        sagemaker_runtime_url=state["sagemaker_runtime_url"],
        lambda_url=state.get("lambda_url"),
        state_dir=state_dir,
        time_scale=float(state.get("time_scale") or 1.0),
        time_anchor=state.get("time_anchor"),
        instance_start_seconds=state.get("instance_start_seconds"),
        parameters=state.get("parameters"),
    )


def deployed(stack_name: str, region: str | None) -> Target:
    from botocore.exceptions import BotoCoreError, ClientError

    aws = boto3.Session(region_name=region)
    if aws.region_name is None:
        raise StackError("no AWS region configured: pass --region or set AWS_REGION")
    try:
        stacks = aws.client("cloudformation").describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as exc:
        message = exc.response.get("Error", {}).get("Message", str(exc))
        raise StackError(f"stack {stack_name}: {message}") from exc
    except BotoCoreError as exc:
        raise StackError(f"cannot reach CloudFormation: {exc}") from exc
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
    missing = [key for key in REQUIRED_OUTPUTS if key not in outputs]
    if missing:
        raise StackError(f"stack {stack_name} lacks outputs {', '.join(missing)}: is it this application?")
    parameters = {p["ParameterKey"]: p.get("ParameterValue", "") for p in stacks[0].get("Parameters", [])}
    return Target(name=stack_name, region=aws.region_name, outputs=outputs, parameters=parameters, _session=aws)


def resolve(stack_name: str | None, region: str | None, state_dir: Path) -> Target:
    return deployed(stack_name, region) if stack_name else local(state_dir)
