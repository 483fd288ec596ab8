"""The ``failureReason`` texts the local endpoint writes, in one place so they can be adjusted together.

The 4xx/5xx texts follow the observed async message (``ClientError: Received server error (500) from model. See
the SageMaker Endpoint logs in your account for more information.``) with the model's message added as the
synchronous ``ModelError`` does. The texts for a timeout, a refused connection, a missing ``Content-Length``, an
expired request and a refused S3 write are UNVERIFIED (no public sample shows them).
"""

from __future__ import annotations

SEE_LOGS = "See the SageMaker Endpoint logs in your account for more information."
MAX_MESSAGE_IN_REASON = 1024  # the model's message is cut in failureReason; the full body is in the failure object
# Ends a failureReason when the failure object itself could not be written: the notification then names no
# failureLocation, and whoever finds the location announced by InvokeEndpointAsync missing learns why from this.
UNWRITTEN_FAILURE = "The failure object could not be written"


def error_reason(status: int, body: bytes) -> str:
    """failureReason for a non-2xx answer from the model."""
    kind = "server" if status >= 500 else "client"
    message = body.decode("utf-8", errors="replace").strip()
    if len(message) > MAX_MESSAGE_IN_REASON:
        message = message[:MAX_MESSAGE_IN_REASON] + "..."
    with_message = f' with message "{message}"' if message else ""
    return f"ClientError: Received {kind} error ({status}) from model{with_message}. {SEE_LOGS}"


def timeout_reason(seconds: float) -> str:
    # UNVERIFIED wording.
    return (
        f"ClientError: Model did not complete the invocation within InvocationTimeoutSeconds ({seconds:g} s). "
        f"{SEE_LOGS}"
    )


def expired_reason(seconds: int) -> str:
    # UNVERIFIED wording.
    return f"Request expired: it waited in the queue longer than RequestTTLSeconds ({seconds} s) for an instance."


def missing_content_length_reason() -> str:
    # Observed (djl-serving#2567), not documented: the async platform rejects chunked container responses.
    return "ClientError: The response from container primary did not specify the required Content-Length header"


def unreachable_reason(error: Exception) -> str:
    """The container could not be reached, or hung up."""
    return (
        f"ClientError: An error occurred while sending the request to the model container: "
        f"{type(error).__name__}: {error}. {SEE_LOGS}"
    )


DOWNLOAD_FAILED = "Failed to download the request payload"


def download_failed_reason(input_location: str | None, error: Exception) -> str:
    return f"ClientError: {DOWNLOAD_FAILED} from {input_location}: {error}"


def payload_unreadable(reason: str | None) -> bool:
    """Whether a failure reason says the endpoint could not read the request's payload from its InputLocation."""
    return DOWNLOAD_FAILED in (reason or "")


def upload_failed_reason(output_location: str, attempts: int, error: Exception) -> str:
    return f"ClientError: Failed to upload the response to {output_location} (tried {attempts} times): {error}"


def with_unwritten_failure(reason: str, failure_location: str, error: Exception) -> str:
    """``reason`` extended with why there is no failure object at ``failure_location``."""
    return f"{reason} ({UNWRITTEN_FAILURE} to {failure_location}: {error})"


def failure_object_missing_explained(reason: str | None) -> bool:
    """Whether a failure reason says its failure object could not be written (so a missing object is expected)."""
    return UNWRITTEN_FAILURE in (reason or "")
