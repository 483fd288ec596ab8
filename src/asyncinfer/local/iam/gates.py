"""IAM at the local stack's own doors, decided in moto's process (:mod:`asyncinfer.local.iam.client`): the endpoint
emulator's front (may this caller invoke the endpoint?) and the deliveries AWS services make (may S3 or SNS invoke
this function?)."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from asyncinfer.http_serving import Response
from asyncinfer.local.iam import client
from asyncinfer.local.iam.checks import Check
from asyncinfer.local.lambda_wiring import EventSource

logger = logging.getLogger(__name__)


class IamRequestGate:
    """A :class:`~asyncinfer.http_serving.RequestGate` for a server of the local stack's own (the endpoint
    emulator: signing name ``sagemaker``; the Lambda Invoke API: ``lambda``); a request signed for another service
    is refused."""

    def __init__(self, aws_endpoint_url: str, service: str) -> None:
        self._url = aws_endpoint_url
        self._service = service

    def refusal(self, method: str, path: str, query: str, headers: Mapping[str, str]) -> Response | None:
        return client.authorize_request(self._url, method, path, query, headers, self._service)


def topic_of(subscription_arn: str) -> str:
    """The topic ARN of a subscription ARN (``arn:aws:sns:R:A:topic:subscription-id``)."""
    return subscription_arn.rsplit(":", 1)[0]


class IamDeliveryGate:
    """The Lambda runtime's :class:`~asyncinfer.local.lambda_runtime.DeliveryGate`: S3 and SNS invoke a function
    only as its resource policy (the template's Lambda permissions) allows, from the source it names."""

    def __init__(self, aws_endpoint_url: str, function_arns: Mapping[str, str], account: str) -> None:
        self._url = aws_endpoint_url
        self._arns = dict(function_arns)
        self._account = account

    def check(self, source: EventSource) -> tuple[str, Check]:
        service = "s3.amazonaws.com" if source.kind == "s3" else "sns.amazonaws.com"
        origin = source.source_arn if source.kind == "s3" else topic_of(source.source_arn)
        context = {"aws:SourceArn": origin, "aws:SourceAccount": self._account}
        return service, Check("lambda:InvokeFunction", self._arns[source.function], context)

    def refusals(self, source: EventSource) -> list[str]:
        """Why the source's service may not invoke the function now (empty: it may)."""
        service, check = self.check(source)
        return client.authorize_service(self._url, service, "lambda:Invoke", [check])

    def admits(self, source: EventSource) -> bool:
        refusals = self.refusals(source)
        for refusal in refusals:
            logger.error("%s: delivery refused by IAM: %s", source.function, refusal)
        return not refusals
