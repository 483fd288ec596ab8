"""Preflight: does a model container behave as an asynchronous endpoint needs, before it is deployed?

Checks, each with the fix when it fails:

* ``/ping`` answers 200 (SageMaker's health check; an instance that fails it never serves).
* A response carries ``Content-Length``: the async platform fails a chunked response (reference §6.1).
* A payload of the configured maximum size is accepted (not 413, not cut off): TorchServe and MMS refuse more than
  6553500 bytes unless their ``*_MAX_REQUEST_SIZE`` is raised.
* The answer comes within ``InvocationTimeoutSeconds``.
* Every content type the pipeline will send is accepted (2xx).

The container is reached through the emulator's own client (local/endpoint/container.py), so preflight judges a
response exactly as the local endpoint does.
"""

from __future__ import annotations

import http.client
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from asyncinfer.local.endpoint.container import ContainerCall, ContainerReply, ContainerTimeout, ContainerUnreachable
from asyncinfer.model.framework_limits import FrameworkLimits, limits_for, variable_names

# One row of the demo model's features: what the payloads are built from when no sample is given.
DEFAULT_SAMPLES: Mapping[str, bytes] = {
    "text/csv": b"0.5,1.2,3.4,0.0,2.2,1.1\n",
    "text/libsvm": b"0 1:0.5 2:1.2 3:3.4 5:2.2\n",
}
PING_TIMEOUT_SECONDS = 10.0
# The default payload is the configured request limit, but no larger than this: MMS's raised limit is 2 GB, more
# than an async input may be (1 GB) and more than a check should hold in memory. --max-payload-bytes goes further.
DEFAULT_PAYLOAD_CAP = 100_000_000


@dataclass(frozen=True, slots=True)
class Settings:
    """What the pipeline will ask of the container (template parameters, or the command line's options)."""

    max_payload_bytes: int
    invocation_timeout_seconds: float
    content_types: tuple[str, ...]
    accept: str
    framework_limits: FrameworkLimits | None = None  # only to name the right variable in a fix
    samples: Mapping[str, bytes] = field(default_factory=lambda: dict(DEFAULT_SAMPLES))


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    passed: bool
    detail: str
    fix: str = ""


def payload_of_size(sample: bytes, size: int) -> bytes:
    """``sample`` repeated (whole lines for line-oriented data) up to ``size`` bytes, then cut to exactly ``size``
    (padded with newlines so that a CSV stays CSV)."""
    line = sample if sample.endswith(b"\n") else sample + b"\n"
    body = line * (size // len(line))
    return body + b"\n" * (size - len(body))


def _request_size_fix(settings: Settings) -> str:
    limits = settings.framework_limits
    wanted = settings.max_payload_bytes
    if limits is not None:
        return f"raise {limits.variables[0]} to at least {wanted} in the Model's Environment (template.yaml)"
    ts, mms = variable_names("TorchServe")[0], variable_names("MMS")[0]
    return (
        f"raise the model server's request limit to at least {wanted} bytes: {ts} (TorchServe), {mms} (MMS), "
        "MAX_CONTENT_LENGTH (SageMaker XGBoost, at most 20 MiB); ModelServerFramework sets the first two"
    )


class Preflight:
    """The checks against one container URL; ``call`` is injected so tests can stand in for the emulator's client."""

    def __init__(
        self,
        url: str,
        settings: Settings,
        *,
        call: Callable[[str], ContainerCall] = ContainerCall,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._url = url.rstrip("/")
        self._settings = settings
        self._call = call
        self._clock = clock

    def run(self) -> list[Check]:
        ping = self.ping()
        if not ping.passed:
            return [ping]
        first_type = self._settings.content_types[0]
        sample = self._sample(first_type)
        checks = [ping]
        started = self._clock()
        try:
            reply: ContainerReply | None = self._invoke(sample, first_type)
            elapsed = self._clock() - started
        except ContainerTimeout:
            reply, elapsed = None, self._settings.invocation_timeout_seconds
        except ContainerUnreachable as exc:
            return [*checks, Check("invocation", False, str(exc), "make POST /invocations answer")]
        checks.append(self._content_length(reply))
        checks.append(self._response_time(elapsed))
        checks.append(self.max_payload())
        checks.extend(self.content_type(content_type) for content_type in self._settings.content_types)
        return checks

    def _sample(self, content_type: str) -> bytes:
        return self._settings.samples.get(content_type, DEFAULT_SAMPLES["text/csv"])

    def _invoke(self, body: bytes, content_type: str, timeout: float | None = None) -> ContainerReply:
        headers = {"Content-Type": content_type, "Accept": self._settings.accept}
        return self._call(self._url).invoke(body, headers, timeout or self._settings.invocation_timeout_seconds)

    def ping(self) -> Check:
        parts = urlsplit(self._url)
        cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        conn = cls(parts.hostname or "", parts.port, timeout=PING_TIMEOUT_SECONDS)
        try:
            conn.request("GET", parts.path + "/ping")
            status = conn.getresponse().status
        except (OSError, http.client.HTTPException) as exc:
            return Check("/ping", False, f"no answer from {self._url}/ping: {exc}", "start the container first")
        finally:
            conn.close()
        if status != 200:
            return Check(
                "/ping", False, f"answered {status}", "/ping must answer 200 once the model is loaded (SageMaker)"
            )
        return Check("/ping", True, "200")

    def _content_length(self, reply: ContainerReply | None) -> Check:
        if reply is None:
            return Check("Content-Length", False, "no response to judge (timed out)", "see the response time check")
        if not reply.has_content_length:
            return Check(
                "Content-Length",
                False,
                f"status {reply.status} sent without Content-Length (chunked)",
                "send the whole response with a Content-Length header: async endpoints fail chunked responses",
            )
        return Check("Content-Length", True, f"status {reply.status}, Content-Length present")

    def _response_time(self, elapsed: float) -> Check:
        limit = self._settings.invocation_timeout_seconds
        if elapsed >= limit:
            return Check(
                "response time",
                False,
                f"no answer within InvocationTimeoutSeconds={limit:g}",
                "make the model faster or raise InvocationTimeoutSeconds (at most 3600)",
            )
        limits = self._settings.framework_limits
        if limits is not None and limit > limits.response_timeout_seconds:
            return Check(
                "response time",
                False,
                f"{elapsed:.2f}s, but {limits.variables[2]}={limits.response_timeout_seconds:g}s is below "
                f"InvocationTimeoutSeconds={limit:g}",
                f"raise {limits.variables[2]} to at least {limit:g}",
            )
        return Check("response time", True, f"{elapsed:.2f}s (InvocationTimeoutSeconds={limit:g})")

    def max_payload(self) -> Check:
        size = self._settings.max_payload_bytes
        first_type = self._settings.content_types[0]
        body = payload_of_size(self._sample(first_type), size)
        name = f"payload of {size} bytes"
        try:
            reply = self._invoke(body, first_type)
        except ContainerTimeout:
            return Check(name, False, "timed out", "make the model faster or raise InvocationTimeoutSeconds")
        except ContainerUnreachable as exc:
            return Check(name, False, f"the container hung up: {exc}", _request_size_fix(self._settings))
        if reply.status == 413:
            return Check(name, False, "413 Request Entity Too Large", _request_size_fix(self._settings))
        if not 200 <= reply.status < 300:
            return Check(name, False, f"answered {reply.status}: {_snippet(reply.body)}", _request_size_fix_or_data())
        return Check(name, True, f"status {reply.status}")

    def content_type(self, content_type: str) -> Check:
        name = f"Content-Type {content_type}"
        try:
            reply = self._invoke(self._sample(content_type), content_type)
        except (ContainerTimeout, ContainerUnreachable) as exc:
            return Check(name, False, str(exc) or type(exc).__name__, "make POST /invocations answer")
        if not 200 <= reply.status < 300:
            return Check(
                name,
                False,
                f"answered {reply.status}: {_snippet(reply.body)}",
                f"accept {content_type} in the container, or map these inputs to another type (DefaultContentType, "
                "the object's Content-Type or its extension)",
            )
        return Check(name, True, f"status {reply.status}")


def _request_size_fix_or_data() -> str:
    return "the container refused a large payload built from the sample; check it with --sample a real input"


def _snippet(body: bytes, limit: int = 120) -> str:
    text = body.decode("utf-8", "replace").strip().replace("\n", " ")
    return text if len(text) <= limit else text[:limit] + "…"


def settings_from_template(
    root: Path, overrides: Mapping[str, str], region: str = "us-east-1", content_types: Sequence[str] = ()
) -> Settings:
    """The settings a stack from ``root``/template.yaml with ``overrides`` gives: InvocationTimeoutSeconds,
    DefaultContentType, DefaultAccept, and the Model's framework limits (its Environment as the template resolves
    it). The payload size checked is the framework's configured request limit, else the XGBoost container's
    (at most DEFAULT_PAYLOAD_CAP)."""
    from asyncinfer.local.template import Resolver, load_sam, parameter_values
    from asyncinfer.model.server import DEFAULT_MAX_CONTENT_LENGTH

    sam = load_sam(root / "template.yaml")
    parameters = parameter_values(sam, overrides)
    # The Model is plain CloudFormation: its Environment resolves without the SAM transform.
    resolver = Resolver(sam, parameters, {"AWS::Region": region})
    environment: dict[str, str] = {}
    for logical, resource in sam["Resources"].items():
        if resource["Type"] == "AWS::SageMaker::Model" and resolver.resource_enabled(logical):
            resolved = resolver.resolve(resource["Properties"]["PrimaryContainer"].get("Environment"))
            if isinstance(resolved, dict):
                environment = {str(k): str(v) for k, v in resolved.items()}
    limits = limits_for(parameters.get("ModelServerFramework", "none"), environment)
    return Settings(
        max_payload_bytes=min(
            limits.max_request_bytes if limits is not None else DEFAULT_MAX_CONTENT_LENGTH, DEFAULT_PAYLOAD_CAP
        ),
        invocation_timeout_seconds=float(parameters["InvocationTimeoutSeconds"]),
        content_types=tuple(content_types) or (parameters["DefaultContentType"],),
        accept=parameters["DefaultAccept"],
        framework_limits=limits,
    )
