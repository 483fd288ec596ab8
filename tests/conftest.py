"""Fixtures shared by the test suites: AWS-free environment, the template, a Lambda context."""

from __future__ import annotations

import os
from typing import Any

import pytest

from tests.samples import FakeLambdaContext, load_template

# No test may reach AWS: fake credentials, a fixed region, Powertools without X-Ray.
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "POWERTOOLS_SERVICE_NAME": "async-inference-pipeline-test",
        "POWERTOOLS_METRICS_NAMESPACE": "AsyncInferencePipeline",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "SAM_CLI_TELEMETRY": "0",
    }
)
os.environ.pop("AWS_PROFILE", None)


@pytest.fixture(scope="session")
def template() -> dict[str, Any]:
    return load_template()


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    return FakeLambdaContext()
