"""Why a grant of template.yaml can go unused in a local run (each reason starts with :data:`NOT_EMULATED` or
:data:`ONLY_WHEN`): the least-privilege report prints these next to each
unused statement, and lists any unused grant without one as unexplained.

Two kinds: what the local stack cannot exercise at all (no CloudWatch Logs, X-Ray, KMS or ECR here), and what only
a rarer path uses (a failure, a large input, a custom model location)."""

from __future__ import annotations

NOT_EMULATED = "not emulated locally"
ONLY_WHEN = "used only"

_FUNCTIONS = ("SubmitterFunctionRole/submitter", "SuccessHandlerFunctionRole/success-handler",
              "ErrorHandlerFunctionRole/error-handler")  # fmt: skip
_EXECUTION = "SageMakerExecutionPolicy/sagemaker-async-endpoint"
_INPUT = "SubmitterInputPolicy/submitter-input-and-endpoint"

EXPLANATIONS: dict[str, str] = {
    **{f"{p}#WriteOwnLogs": f"{NOT_EMULATED}: Lambda writes function logs to CloudWatch Logs" for p in _FUNCTIONS},
    **{f"{p}#Tracing": f"{NOT_EMULATED}: X-Ray (tracing is off locally)" for p in _FUNCTIONS},
    **{
        f"{p}#OnFailureDestination": "used only when an invocation of the function fails after its retries (Lambda "
        "sends the on-failure record with the function's role); tests/integration/test_iam.py exercises the "
        "submitter's"
        for p in _FUNCTIONS
    },
    **{
        f"{p}#Jobs": "dynamodb:GetItem: no handler reads a job with GetItem (conditional writes return the old item "
        "with ReturnValuesOnConditionCheckFailure); kept because whether DynamoDB then also checks GetItem is "
        "UNVERIFIED and removing it could break a deployed stack. dynamodb:PutItem (topic handlers): only for a "
        "notification of a job this stack never claimed (someone invoked the endpoint directly)"
        for p in _FUNCTIONS
    },
    "SubmitterFunctionRole/submitter#ResultEvents": "used only when the submitter decides a file's outcome itself "
    "(an input refused before the endpoint: empty, too large, bad metadata, gone)",
    "ErrorHandlerFunctionRole/error-handler#ResultEvents": "used only when an inference fails at the endpoint",
    f"{_INPUT}#ReadInputObjects": "s3:GetObject: only for an event without a version id (the input bucket is "
    "versioned, so S3's events carry one, and the submitter reads that exact version)",
    f"{_EXECUTION}#WriteOutputsAndFailures": "s3:AbortMultipartUpload: only when a multipart upload of a large "
    "output fails (outputs here are small enough for one PutObject)",
    f"{_INPUT}#TellMissingInputsApart": "used only when an input is gone before it is read (404, not 403)",
    f"{_INPUT}#StageLargeInputs": "used only for inputs over 128,000 bytes (copied to staging/)",
    f"{_EXECUTION}#ReadStagedInputs": "used only for inputs over 128,000 bytes (read from staging/)",
    f"{_EXECUTION}#ReadCustomModelArtifact": "used only when ModelDataUrl is outside the default artifact prefix",
    f"{_EXECUTION}#ListOutputBucket": "used only when the endpoint reads a staged input that is gone (S3 checks it "
    "to answer 404 instead of 403)",
    f"{_EXECUTION}#EncryptNotificationsThroughSns": f"{NOT_EMULATED}: KMS (SNS encrypts with alias/aws/sns on AWS)",
    f"{_EXECUTION}#WriteEndpointLogs": f"{NOT_EMULATED}: CloudWatch Logs of the endpoint",
    f"{_EXECUTION}#PutEndpointMetrics": f"{NOT_EMULATED}: the instance metrics (/aws/sagemaker/Endpoints) the "
    "instance agent publishes with the role; AWS/SageMaker metrics are published by the service itself",
    f"{_EXECUTION}#PullCustomContainerImage": f"{NOT_EMULATED}: ECR (no container images run locally)",
    f"{_EXECUTION}#EcrAuthorizationForCustomImage": f"{NOT_EMULATED}: ECR (no container images run locally)",
    "DeadLetterQueuePolicy#AllowSnsRedriveFromThisStacksTopics": f"{NOT_EMULATED}: SNS's delivery retries and its "
    "redrive to the dead-letter queue (a refused delivery is logged as lost)",
    "DeadLetterQueuePolicy#AllowEventBridgeDeadLettersFromResultsRule": "used only when EventBridge cannot deliver "
    "a result event to the results queue",
}
