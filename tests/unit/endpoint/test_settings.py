"""The endpoint's settings (asyncinfer.local.endpoint.settings): read from the control plane, TestNotifications on
register and update, endpoints found on their first request."""

from __future__ import annotations

import json
from typing import Any

import pytest
from async_pipeline.notifications import TestNotification as SageMakerTestNotification
from async_pipeline.notifications import parse_notification

from asyncinfer.local.endpoint.emulator import AsyncEndpointEmulator
from asyncinfer.local.endpoint.settings import EndpointNotFoundError, account_of, settings_from
from tests.unit.endpoint.world import (
    ACCOUNT,
    World,
    runtime,
)


def test_test_notification_on_register_update_and_lazy_lookup(world: World, emulator: AsyncEndpointEmulator) -> None:
    expected = SageMakerTestNotification().to_message()
    ep = world.endpoint()
    settings = emulator.register_endpoint(ep.name)
    assert settings.max_concurrent_invocations_per_instance == 1
    for queue in (ep.success_queue, ep.error_queue):
        (raw,) = world.messages(queue, 1, skip_tests=False)
        assert raw == expected
        assert isinstance(parse_notification(json.dumps(raw)), SageMakerTestNotification)
    emulator.register_endpoint(ep.name)  # idempotent: no second message
    emulator.update_endpoint(ep.name)
    assert world.messages(ep.success_queue, 1, skip_tests=False) == [expected]

    # An endpoint created after start() and never registered is found on its first request.
    late = world.endpoint(concurrency=None)
    runtime(emulator.url).invoke_endpoint_async(EndpointName=late.name, Body=b"1", ContentType="text/csv")
    first, second = world.messages(late.success_queue, 2, skip_tests=False)
    assert first == expected and second["eventName"] == "InferenceResult"
    # Without ClientConfig the emulator uses one invocation at a time per instance.
    assert emulator.stats(late.name)["max_concurrency_per_instance"] == 1


def test_settings_from_an_endpoint_config() -> None:
    config: Any = {
        "EndpointConfigName": "cfg",
        "ProductionVariants": [{"VariantName": "Blue", "InitialInstanceCount": 3}],
        "AsyncInferenceConfig": {
            "OutputConfig": {
                "S3OutputPath": "s3://b/out",
                "NotificationConfig": {
                    "ErrorTopic": "arn:error",
                    "IncludeInferenceResponseIn": ["ERROR_NOTIFICATION_TOPIC"],
                },
            },
            "ClientConfig": {"MaxConcurrentInvocationsPerInstance": 4},
        },
    }
    settings = settings_from("ep", ACCOUNT, "cfg", config, arn=None, default_max_concurrency=1)
    assert (settings.variant_name, settings.initial_instance_count) == ("Blue", 3)
    assert (settings.output_path, settings.failure_path) == ("s3://b/out", None)
    assert (settings.success_topic, settings.error_topic, settings.topics) == (None, "arn:error", ["arn:error"])
    assert settings.include_response_in == {"ERROR_NOTIFICATION_TOPIC"}
    assert settings.max_concurrent_invocations_per_instance == 4
    del config["AsyncInferenceConfig"]["ClientConfig"], config["ProductionVariants"]
    defaults = settings_from("ep", ACCOUNT, "cfg", config, arn=None, default_max_concurrency=2)
    assert (defaults.max_concurrent_invocations_per_instance, defaults.initial_instance_count) == (2, 1)
    assert defaults.variant_name == "AllTraffic"
    with pytest.raises(EndpointNotFoundError, match="not configured for asynchronous inference"):
        settings_from("ep", ACCOUNT, "cfg", {"EndpointConfigName": "cfg"}, arn=None, default_max_concurrency=1)


def test_the_account_comes_from_the_arn() -> None:
    assert account_of("arn:aws:sagemaker:us-east-1:111122223333:endpoint/ep") == "111122223333"
    assert account_of("not-an-arn") is None and account_of(None) is None
