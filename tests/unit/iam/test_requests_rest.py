"""REST calls whose resource is in the path, from real boto3 clients: sagemaker-runtime invocations and Lambda."""

from __future__ import annotations

from dataclasses import replace

import pytest

from asyncinfer.local.iam.checks import Check, UnmappedRequest
from asyncinfer.local.iam.requests import needs_body
from tests.unit.iam.captured import ACCOUNT, REGION, mapped, sent

ENDPOINT = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/async-endpoint"


def test_invoke_endpoint_async_checks_the_lower_cased_endpoint_without_reading_the_body() -> None:
    request = sent("sagemaker-runtime", "invoke_endpoint_async", EndpointName="Async-Endpoint",
                   InputLocation="s3://staging/jobs/1/in.csv", InferenceId="1")  # fmt: skip
    assert not needs_body(request, "sagemaker")
    result = mapped(request)
    assert result.operation == "sagemaker:InvokeEndpointAsync"
    assert result.checks == (Check("sagemaker:InvokeEndpointAsync", ENDPOINT),)


def test_a_trailing_slash_names_the_same_endpoint_as_the_emulator_accepts_it() -> None:
    request = sent(
        "sagemaker-runtime", "invoke_endpoint_async", EndpointName="async-endpoint", InputLocation="s3://b/k"
    )
    assert mapped(replace(request, path=request.path + "/")).checks == (
        Check("sagemaker:InvokeEndpointAsync", ENDPOINT),
    )


def test_invoke_endpoint_checks_invoke_endpoint() -> None:
    result = mapped(sent("sagemaker-runtime", "invoke_endpoint", EndpointName="async-endpoint", Body=b"1,2"))
    assert result.checks == (Check("sagemaker:InvokeEndpoint", ENDPOINT),)


def test_an_unknown_runtime_path_is_refused() -> None:
    request = sent("sagemaker-runtime", "invoke_endpoint", EndpointName="e", Body=b"")
    with pytest.raises(UnmappedRequest, match="sagemaker runtime: POST /endpoints/e/other"):
        mapped(replace(request, path="/endpoints/e/other"))


def test_lambda_invoke_checks_invoke_function_on_the_function_and_qualifier() -> None:
    function = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:submitter"
    request = sent("lambda", "invoke", FunctionName="submitter", Payload=b"{}")
    assert not needs_body(request, "lambda")
    result = mapped(request)
    assert (result.operation, result.checks) == ("lambda:Invoke", (Check("lambda:InvokeFunction", function),))
    qualified = mapped(sent("lambda", "invoke", FunctionName="submitter", Qualifier="live", Payload=b"{}"))
    assert qualified.checks == (Check("lambda:InvokeFunction", f"{function}:live"),)
    by_arn = mapped(sent("lambda", "invoke", FunctionName=function, InvocationType="Event", Payload=b"{}"))
    assert by_arn.checks == (Check("lambda:InvokeFunction", function),)


def test_lambda_reads_and_other_calls() -> None:
    function = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:f"
    assert mapped(sent("lambda", "get_function", FunctionName="f")).checks == (Check("lambda:GetFunction", function),)
    assert mapped(sent("lambda", "list_functions")).checks == (Check("lambda:ListFunctions", "*"),)
    with pytest.raises(UnmappedRequest, match="lambda: DELETE"):
        mapped(sent("lambda", "delete_function", FunctionName="f"))
