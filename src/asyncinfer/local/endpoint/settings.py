"""An endpoint's settings as the control plane (moto) describes them: DescribeEndpoint → DescribeEndpointConfig.

:func:`settings_from` turns the two descriptions into :class:`EndpointSettings` (pure); :class:`ControlPlane` makes
the calls and knows the account.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from botocore.exceptions import BotoCoreError, ClientError

if TYPE_CHECKING:
    from mypy_boto3_sagemaker import SageMakerClient
    from mypy_boto3_sagemaker.type_defs import DescribeEndpointConfigOutputTypeDef
    from mypy_boto3_sts import STSClient

DEFAULT_ACCOUNT = "123456789012"  # moto's account, used when STS cannot say

# The values of NotificationConfig.IncludeInferenceResponseIn: which notification embeds the model's answer.
NotificationTopic = Literal["SUCCESS_NOTIFICATION_TOPIC", "ERROR_NOTIFICATION_TOPIC"]
SUCCESS_NOTIFICATION_TOPIC: NotificationTopic = "SUCCESS_NOTIFICATION_TOPIC"
ERROR_NOTIFICATION_TOPIC: NotificationTopic = "ERROR_NOTIFICATION_TOPIC"


class EndpointNotFoundError(LookupError):
    """moto does not know the endpoint (or it is not an asynchronous one); the message says which."""


@dataclass(frozen=True, slots=True)
class EndpointSettings:
    """An endpoint's configuration as read from the control plane (one snapshot per register/update)."""

    name: str
    account: str
    config_name: str
    variant_name: str
    output_path: str | None
    failure_path: str | None
    success_topic: str | None
    error_topic: str | None
    include_response_in: frozenset[str]
    max_concurrent_invocations_per_instance: int
    initial_instance_count: int
    arn: str | None = None
    model_data_url: str | None = None  # the variant's model artifact (DescribeModel), what its instances load
    # The variant's desired count now (DescribeEndpoint): InitialInstanceCount after CreateEndpoint, what an
    # UpdateEndpoint kept or reset it to (RetainAllVariantProperties) after one.
    desired_instance_count: int | None = None

    @property
    def topics(self) -> list[str]:
        """The configured topics, each once (success first)."""
        return list(dict.fromkeys(t for t in (self.success_topic, self.error_topic) if t))


def account_of(arn: str | None) -> str | None:
    """The account of an ARN (``arn:aws:sagemaker:REGION:ACCOUNT:…``), or None when it is not one."""
    return arn.split(":")[4] if isinstance(arn, str) and arn.count(":") >= 5 else None


def settings_from(
    name: str,
    account: str,
    config_name: str,
    config: DescribeEndpointConfigOutputTypeDef,
    *,
    arn: str | None,
    default_max_concurrency: int,
    model_data_url: str | None = None,
    desired_instance_count: int | None = None,
) -> EndpointSettings:
    """The settings an endpoint config describes. Without ``ClientConfig.MaxConcurrentInvocationsPerInstance``:
    ``default_max_concurrency`` (SageMaker "chooses an optimal value", UNVERIFIED which)."""
    async_config = config.get("AsyncInferenceConfig")
    if not async_config:
        raise EndpointNotFoundError(
            f"Endpoint {name} of account {account} is not configured for asynchronous inference."
        )
    output = async_config.get("OutputConfig") or {}
    notification = output.get("NotificationConfig") or {}
    client = async_config.get("ClientConfig") or {}
    variants = config.get("ProductionVariants") or []
    return EndpointSettings(
        name=name,
        account=account,
        config_name=config_name,
        variant_name=variants[0].get("VariantName", "AllTraffic") if variants else "AllTraffic",
        output_path=output.get("S3OutputPath") or None,
        failure_path=output.get("S3FailurePath") or None,
        success_topic=notification.get("SuccessTopic") or None,
        error_topic=notification.get("ErrorTopic") or None,
        include_response_in=frozenset(notification.get("IncludeInferenceResponseIn") or ()),
        max_concurrent_invocations_per_instance=int(
            client.get("MaxConcurrentInvocationsPerInstance") or default_max_concurrency
        ),
        initial_instance_count=int(variants[0].get("InitialInstanceCount", 1)) if variants else 1,
        arn=arn,
        model_data_url=model_data_url,
        desired_instance_count=desired_instance_count,
    )


class ControlPlane:
    """DescribeEndpoint → DescribeEndpointConfig, and the account (from the endpoint's ARN, else STS, else moto's)."""

    def __init__(
        self,
        sagemaker: SageMakerClient,
        sts: STSClient,
        *,
        account_id: str | None = None,
        default_max_concurrency: int = 1,
    ) -> None:
        self._sagemaker = sagemaker
        self._sts = sts
        self._account_id = account_id
        self._default_max_concurrency = default_max_concurrency

    def account(self) -> str:
        if self._account_id is None:
            try:
                self._account_id = str(self._sts.get_caller_identity()["Account"])
            except (BotoCoreError, ClientError):
                self._account_id = DEFAULT_ACCOUNT
        return self._account_id

    def describe(self, name: str, *, pending: bool = False) -> EndpointSettings:
        """The endpoint's settings now (``pending``: those of the update in progress, if any);
        :class:`EndpointNotFoundError` if it does not exist or is not asynchronous."""
        try:
            endpoint = self._sagemaker.describe_endpoint(EndpointName=name)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("ValidationException", "ValidationError"):
                raise EndpointNotFoundError(f"Endpoint {name} of account {self.account()} not found.") from exc
            raise
        arn = endpoint.get("EndpointArn")
        account = account_of(arn) or self.account()
        config_name = endpoint["EndpointConfigName"]
        live = endpoint.get("ProductionVariants") or []
        # UNVERIFIED whether DescribeEndpoint names the new config while Updating or only in PendingDeploymentSummary.
        deployment = endpoint.get("PendingDeploymentSummary")
        if pending and deployment:
            config_name = deployment["EndpointConfigName"]
            live = deployment.get("ProductionVariants") or live  # type: ignore[assignment]  # the fields read are shared
        config = self._sagemaker.describe_endpoint_config(EndpointConfigName=config_name)
        variants = config.get("ProductionVariants") or []
        model_data_url = None
        if variants and variants[0].get("ModelName"):
            try:
                model = self._sagemaker.describe_model(ModelName=variants[0]["ModelName"])
                model_data_url = model.get("PrimaryContainer", {}).get("ModelDataUrl")
            except ClientError:  # a config naming no model moto knows (tests); the container is then given
                model_data_url = None
        desired = live[0].get("DesiredInstanceCount") if live else None
        return settings_from(
            name,
            account,
            config_name,
            config,
            arn=arn,
            default_max_concurrency=self._default_max_concurrency,
            model_data_url=model_data_url,
            desired_instance_count=int(desired) if desired is not None else None,
        )

    def update_in_progress(self, name: str) -> bool:
        """Whether the endpoint is ``Updating`` for an UpdateEndpoint (it has a PendingDeploymentSummary), rather
        than for a capacity change (UpdateEndpointWeightsAndCapacities, i.e. autoscaling), which starts no model."""
        endpoint = self._sagemaker.describe_endpoint(EndpointName=name)
        return endpoint["EndpointStatus"] == "Updating" and bool(endpoint.get("PendingDeploymentSummary"))

    def status(self, name: str) -> tuple[str, str]:
        """The endpoint's status and config name now (DescribeEndpoint)."""
        endpoint = self._sagemaker.describe_endpoint(EndpointName=name)
        return endpoint["EndpointStatus"], endpoint["EndpointConfigName"]
