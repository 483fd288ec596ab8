"""The local stack: template.yaml running on this machine, with no AWS account and no Docker.

Pieces, started in this order and stopped in reverse:
1. moto in server mode, in a process of its own, on loopback (S3, SNS, SQS, DynamoDB, EventBridge, SageMaker
   control plane): see moto_server.py;
2. the stack, provisioned from template.yaml (see provision.py);
3. the model container (a stand-in for the SageMaker XGBoost 1.7-1 container) loading the Model's artifact from
   its S3 URI, or any other container URL the user gives;
4. the asynchronous endpoint emulator, reading the endpoint's AsyncInferenceConfig from the stack;
5. the endpoint's life (:mod:`asyncinfer.local.endpoint_life`): its CloudWatch metrics and the template's alarms,
   Application Auto Scaling on its scalable target and policies, instances that take time to start and stop, all on
   a clock ``time_scale`` times faster than real time;
6. the Lambda runtime running the template's functions on their triggers.

With a fault plan (``LocalConfig.faults``, see :mod:`asyncinfer.faults`) the pieces misbehave on purpose: a chaos proxy
goes between the endpoint emulator and the model container, the emulator gets its fault hooks, the trigger pollers
duplicate and delay deliveries, and the worker processes get their crash hooks (``ASYNCINFER_FAULTS``). The
handlers and the layer are never touched. ``function_timeout`` overrides every function's Timeout (the handlers
derive their leases from the invocation's deadline, so leases shrink with it, and so does the wait before the
runtime retries a crashed invocation): a soak with crashes then does not wait 33 s per retry.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import tempfile
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast, overload

import boto3
from async_pipeline import s3_uris

from asyncinfer.faults import CONTAINER_FAULTS, ENV_VAR, WORKER_FAULTS, EndpointFaults, FaultInjector, FaultPlan
from asyncinfer.local.lambda_runtime import (
    AsyncInvoker,
    EventSourcePoller,
    FunctionRunner,
    worker_environment,
)
from asyncinfer.local.moto_process import MotoProcess
from asyncinfer.local.ports import StackPorts
from asyncinfer.local.provision import LocalStack, Provisioner
from asyncinfer.local.stack_iam import IamError, StackIam
from asyncinfer.local.template import load_sam

if TYPE_CHECKING:
    from botocore.client import BaseClient
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sagemaker import SageMakerClient
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sqs import SQSClient

    from asyncinfer.faults.inputs import InputChanges
    from asyncinfer.local.chaos_proxy import ChaosProxy
    from asyncinfer.local.endpoint.emulator import AsyncEndpointEmulator
    from asyncinfer.local.endpoint.invocation import ContainerUrl
    from asyncinfer.local.endpoint.updates import ModelHosting
    from asyncinfer.local.endpoint_life import EndpointLife
    from asyncinfer.local.iam.authorizer import Mode
    from asyncinfer.local.lambda_api import LambdaApi
    from asyncinfer.local.model_hosting import ModelFleet
    from asyncinfer.model.framework_limits import FrameworkLimits
    from asyncinfer.model.server import Container

STATE_FILE = "local.json"
FAULT_COUNTS_FILE = "fault-counts.json"  # injections so far, rewritten every second while faults are on
DEFAULT_STACK_NAME = "asyncinfer-local"
DEFAULT_REGION = "us-east-1"


class StackError(RuntimeError):
    """The local stack cannot start or is not running; the message is meant for the user as it is."""


@dataclass
class LocalConfig:
    root: Path
    state_dir: Path
    host: str = "127.0.0.1"
    ports: StackPorts = field(default_factory=StackPorts.from_base)
    stack_name: str = DEFAULT_STACK_NAME
    region: str = DEFAULT_REGION
    parameters: dict[str, str] = field(default_factory=dict)
    container_url: str | None = None  # e.g. a user's own image under `docker run -p 8080:8080 IMAGE serve`
    concurrency: int = 4  # execution environments per function
    retry_delays: tuple[float, ...] = (1.0, 2.0)
    model_latency_seconds: float = 0.0
    faults: FaultPlan | None = None  # fault injection (asyncinfer.faults); None or empty: none
    function_timeout: int | None = None  # overrides every function's Timeout (seconds), e.g. for soaks
    time_scale: float = 1.0  # emulated minutes per real minute: metrics, alarms, cooldowns, instance start and stop
    instance_start_seconds: float = 120.0  # emulated seconds an instance takes to come into service (AWS: minutes)
    instance_stop_seconds: float = 30.0  # emulated seconds an instance takes to go
    model_server: str | None = None  # "xgboost" | "script" stand-in; None: chosen from ContainerImage
    demo_model: str = "xgboost"  # the artifact put at an empty ModelDataUrl: "xgboost" | "digits"
    iam: str = "enforce"  # enforce | audit | off (stack_iam.py)

    @property
    def state_file(self) -> Path:
        return self.state_dir / STATE_FILE


def _check_port(host: str, port: int, what: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise StackError(
                f"port {port} ({what}) is in use on {host}; is a local stack already up? "
                "(asyncinfer local down, or --port)"
            ) from exc


def session(region: str) -> boto3.Session:
    return boto3.Session(aws_access_key_id="local", aws_secret_access_key="local", region_name=region)


def read_state(state_dir: Path) -> dict[str, Any]:  # the state file's JSON
    path = state_dir / STATE_FILE
    if not path.exists():
        raise StackError("no local stack is up (start one with: asyncinfer local up)")
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def update_state(state_dir: Path, **fields: object) -> None:
    """Change fields of the running local stack's state file (parameters after asyncinfer deploy, the model
    container after an endpoint update), atomically."""
    state = read_state(state_dir)
    state.update(fields)
    path = state_dir / STATE_FILE
    scratch = path.with_name(f".{STATE_FILE}.{os.getpid()}.{threading.get_ident()}.tmp")
    scratch.write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")
    scratch.replace(path)


class RunningStack:
    def __init__(self, config: LocalConfig) -> None:
        self.config = config
        self.stack: LocalStack | None = None
        self.aws_endpoint_url = f"http://{config.host}:{config.ports.aws}"
        self.sagemaker_runtime_url = ""
        self._moto: MotoProcess | None = None
        # Why the stack stopped working on its own (a process of it died), for whoever waits on it.
        self.failure: str | None = None
        self.failed = threading.Event()
        self._fleet: ModelFleet | None = None
        self._iam: StackIam | None = None
        self._emulator: AsyncEndpointEmulator | None = None
        self._life: EndpointLife | None = None
        self._runners: dict[str, FunctionRunner] = {}
        self._invoker: AsyncInvoker | None = None
        self._pollers: list[EventSourcePoller] = []
        self._lambda_api: LambdaApi | None = None
        self.lambda_url = ""
        plan = config.faults
        self.faults: FaultInjector | None = FaultInjector(plan) if plan else None
        self._chaos: ChaosProxy | None = None
        self._endpoint_faults: EndpointFaults | None = None
        self._counts_stop = threading.Event()
        self._counts_thread: threading.Thread | None = None

    # --- lifecycle ----------------------------------------------------------------------------------------------

    def start(self) -> LocalStack:
        config = self.config
        ports = [
            (config.ports.aws, "AWS APIs"),
            (config.ports.sagemaker, "sagemaker-runtime"),
            (config.ports.lambda_api, "Lambda API"),
        ]
        if config.container_url is None:
            ports.append((config.ports.model, "model container"))
        for port, what in ports:
            _check_port(config.host, port, what)
        try:
            self._start_moto()
            self.stack = self._provision()
            try:
                self._iam = StackIam(self.stack, cast("Mode", config.iam), self.aws_endpoint_url, config.state_dir)
                self._iam.configure()
            except IamError as exc:
                raise StackError(str(exc)) from None
            self._start_model()
            self._start_emulator()
            self._start_life()
            self._start_functions()
        except BaseException:
            self.stop()
            raise
        self._write_state()
        return self.stack

    def stop(self) -> None:
        self._counts_stop.set()
        if self._endpoint_faults is not None:
            self._endpoint_faults.stop()
            self._endpoint_faults = None
        for poller in self._pollers:
            poller.stop()
        for poller in self._pollers:
            poller.join(timeout=5)
        if self._lambda_api is not None:
            self._lambda_api.stop()
            self._lambda_api = None
        if self._invoker is not None:
            self._invoker.close()
        for runner in self._runners.values():
            runner.stop()
        if self._life is not None:
            self._life.stop()
            self._life = None
        if self._emulator is not None:
            self._emulator.stop()
        if self._chaos is not None:
            self._chaos.stop()
            self._chaos = None
        if self._fleet is not None:
            self._fleet.stop()
        if self._iam is not None and self._moto is not None:
            self._iam.write_report()
        if self._moto is not None:
            self._moto.stop()
        self._pollers, self._runners, self._invoker = [], {}, None
        self._emulator, self._fleet, self._moto = None, None, None
        if self._counts_thread is not None:
            self._counts_thread.join(5)
            self._counts_thread = None
        if self.config.state_file.exists():
            self.config.state_file.unlink()

    def __enter__(self) -> RunningStack:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    # --- pieces -------------------------------------------------------------------------------------------------

    def _start_moto(self) -> None:
        # A process of its own: a core of its own, and a fresh moto state for every stack.
        log = self.config.state_dir / "logs" / "moto.log"
        self._moto = MotoProcess(self.config.host, self.config.ports.aws, log, on_exit=self._fail)
        self._moto.start()

    def _fail(self, message: str) -> None:
        self.failure = message
        self.failed.set()

    @property
    def iam(self) -> StackIam:
        """Identities and IAM enforcement (stack_iam.py); the stack must be provisioned."""
        if self._iam is None:
            raise StackError("the local stack is not started")
        return self._iam

    @property
    def moto(self) -> MotoProcess:
        """moto's process (for its pid and CPU time); the stack must be started."""
        if self._moto is None:
            raise StackError("the local stack is not started")
        return self._moto

    @overload
    def client(self, service: Literal["s3"]) -> S3Client: ...
    @overload
    def client(self, service: Literal["sqs"]) -> SQSClient: ...
    @overload
    def client(self, service: str) -> BaseClient: ...
    def client(self, service: str) -> BaseClient | S3Client | SQSClient:
        """A client of the local stack's AWS APIs (moto)."""
        # The overloads above give callers the typed client; boto3's own overloads need a literal service name.
        made: BaseClient = session(self.config.region).client(service, endpoint_url=self.aws_endpoint_url)  # type: ignore[call-overload]
        return made

    def _provision(self) -> LocalStack:
        sam = load_sam(self.config.root / "template.yaml")
        provisioner = Provisioner(
            session(self.config.region),
            self.aws_endpoint_url,
            self.config.root,
            self.config.stack_name,
            self.config.region,
        )
        return provisioner.provision(sam, self.config.parameters)

    def _start_model(self) -> None:
        assert self.stack is not None
        if self.config.container_url is not None:
            return
        from asyncinfer.local.model_hosting import ModelFleet, demo_artifact

        (uri,) = set(self.stack.model_data_urls.values())
        bucket, key = s3_uris.parse_uri(uri)
        s3 = self.client("s3")
        try:
            s3.head_object(Bucket=bucket, Key=key)
        except Exception:
            # The template's default artifact location: put the demo model there, trained now from local data.
            with tempfile.TemporaryDirectory() as scratch:
                artifact = demo_artifact(self.config.demo_model, Path(scratch) / "model.tar.gz")
                existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
                if bucket not in existing:
                    s3.create_bucket(Bucket=bucket)
                s3.upload_file(str(artifact), bucket, key)
        # SageMaker downloads the model artifact with the execution role.
        execution = self.iam.execution_session(self.config.region)
        role_s3 = execution.client("s3", endpoint_url=self.aws_endpoint_url) if execution is not None else s3
        self._fleet = ModelFleet(
            role_s3,
            self.config.host,
            latency_seconds=self.config.model_latency_seconds,
            on_switch=self._container_moved,
            framework_limits=self._framework_limits(),
            container=self.model_server,
            program=self._model_environment().get("SAGEMAKER_PROGRAM"),
        )
        for index, endpoint in enumerate(self.stack.endpoints):
            # The stack's model port for the first endpoint's first container; any free port after that.
            self._fleet.start(
                endpoint, self.stack.model_data_urls[endpoint], self.config.ports.model if index == 0 else 0
            )

    @property
    def model_server(self) -> Container:
        """The stand-in serving the model: the configured one, else the one for the template's ContainerImage."""
        from asyncinfer.model.container_images import stand_in_for

        if self.config.model_server is not None:
            return "script" if self.config.model_server == "script" else "xgboost"
        return stand_in_for(self.stack.parameters.get("ContainerImage", "") if self.stack is not None else "")

    def _model_environment(self) -> dict[str, str]:
        """The first endpoint's Model's Environment, as provisioned from the template."""
        assert self.stack is not None
        return self.stack.model_environments.get(self.stack.endpoints[0], {}) if self.stack.endpoints else {}

    def _framework_limits(self) -> FrameworkLimits | None:
        """TorchServe's/MMS's limits under the Model's Environment as provisioned from the template."""
        from asyncinfer.model.framework_limits import FrameworkLimitError, limits_for

        assert self.stack is not None
        framework = self.stack.parameters.get("ModelServerFramework", "none")
        environment = self._model_environment()
        try:
            return limits_for(framework, environment)
        except FrameworkLimitError as exc:
            raise StackError(f"the Model's Environment: {exc}") from None

    def _model_not_emulated(self) -> dict[str, list[str]]:
        if self.config.container_url is not None or self.model_server != "script":
            return {}
        from asyncinfer.model.script_mode import NOT_EMULATED

        return {"ScriptMode": list(NOT_EMULATED)}

    def _container_moved(self, endpoint: str, url: str) -> None:
        if self.stack is not None and endpoint == self.stack.endpoints[0] and self.config.state_file.exists():
            update_state(self.config.state_dir, model_container_url=url)

    @property
    def container_url(self) -> str:
        """The first endpoint's model container now (an endpoint update may move it)."""
        if self.config.container_url is not None:
            return self.config.container_url
        assert self._fleet is not None
        assert self.stack is not None
        return self._fleet.url(self.stack.endpoints[0])

    def _hosting(self) -> ModelHosting:
        """Where the emulator gets the containers of an updated endpoint's new model."""
        if self._fleet is not None:
            return self._fleet
        from asyncinfer.local.model_hosting import ExternalContainer

        assert self.stack is not None
        assert self.config.container_url is not None
        urls = list(self.stack.model_data_urls.values())
        return ExternalContainer(self.config.container_url, urls[0] if urls else None)

    def _start_chaos_proxy(self) -> ContainerUrl:
        """The URL the emulator calls: the container's, or a chaos proxy's in front of it (container faults)."""
        assert self.stack is not None
        if self.faults is None or not self.faults.plan.only(CONTAINER_FAULTS):
            return self.container_url if self._fleet is None else self._fleet.url
        from asyncinfer.local.chaos_proxy import ChaosProxy

        # Stall past the invocation timeout the submitter sends (the template's InvocationTimeoutSeconds).
        stall = float(self.stack.parameters.get("InvocationTimeoutSeconds") or 900) + 1.0
        # Read per request: after an endpoint update the model is elsewhere.
        upstream = self.container_url if self._fleet is None else self._first_container
        self._chaos = ChaosProxy(upstream, self.faults, host=self.config.host, stall_seconds=stall)
        return self._chaos.start()

    def _first_container(self) -> str:
        return self.container_url

    def _start_emulator(self) -> None:
        from asyncinfer.local.endpoint.emulator import AsyncEndpointEmulator

        assert self.stack is not None
        emulator = AsyncEndpointEmulator(
            aws_endpoint_url=self.aws_endpoint_url,
            region=self.config.region,
            container_url=self._start_chaos_proxy(),
            host=self.config.host,
            port=self.config.ports.sagemaker,
            session=session(self.config.region),
            data_session=self.iam.execution_session(self.config.region),
            gate=self.iam.request_gate("sagemaker"),
        )
        self._emulator = emulator
        if self.faults is not None:
            self._endpoint_faults = EndpointFaults(self.faults, emulator, self._input_changes())
            self._endpoint_faults.install()  # registers its hooks with the emulator (when the plan has endpoint faults)
        self.sagemaker_runtime_url = emulator.start()
        for endpoint in self.stack.endpoints:
            emulator.register_endpoint(endpoint)
        emulator.watch_updates(self._hosting())  # UpdateEndpoint on moto reaches the endpoint (model included)

    def _start_life(self) -> None:
        from asyncinfer.local.endpoint_life import EndpointLife, LifeClients, LifeOptions
        from asyncinfer.local.moto_process import record_emulated

        assert self.stack is not None
        assert self._emulator is not None
        config = self.config
        clients = LifeClients(
            cloudwatch=self.client("cloudwatch"),
            autoscaling=self.client("application-autoscaling"),
            sagemaker=cast("SageMakerClient", self.client("sagemaker")),
            sns=cast("SNSClient", self.client("sns")),
        )
        options = LifeOptions(config.time_scale, config.instance_start_seconds, config.instance_stop_seconds)
        url = self.aws_endpoint_url
        self._life = EndpointLife(
            self._emulator,
            clients,
            self.stack.endpoints,
            region=config.region,
            account=self.stack.account,
            recorder=lambda payload: record_emulated(url, payload),
            options=options,
        )
        self._life.start()

    @property
    def life(self) -> EndpointLife:
        assert self._life is not None, "the local stack is not started"
        return self._life

    def _input_changes(self) -> InputChanges | None:
        """The ``input-changed`` fault's handle on the stack's input objects and jobs table (None when off)."""
        if self.faults is None or not self.faults.on("input-changed"):
            return None
        from asyncinfer.faults.inputs import InputChanges

        assert self.stack is not None
        dynamodb = cast("DynamoDBClient", self.client("dynamodb"))
        return InputChanges(self.faults, self.client("s3"), dynamodb, self.stack.outputs["JobsTableName"])

    @property
    def emulator(self) -> AsyncEndpointEmulator:
        assert self._emulator is not None, "the local stack is not started"
        return self._emulator

    def _start_functions(self) -> None:
        assert self.stack is not None
        env = worker_environment(self.aws_endpoint_url, self.sagemaker_runtime_url, self.config.region)
        faults = self.faults
        if faults is not None and faults.plan.only(WORKER_FAULTS):
            env[ENV_VAR] = json.dumps(faults.plan.only(WORKER_FAULTS).to_json())
        if self.config.function_timeout:
            self.stack.functions = {
                name: replace(spec, timeout=self.config.function_timeout) for name, spec in self.stack.functions.items()
            }
        logs = self.config.state_dir / "logs"
        iam = self.iam
        gate = iam.delivery_gate()
        try:
            iam.check_s3_notifications(gate)
        except IamError as exc:
            raise StackError(str(exc)) from None
        self._runners = {
            name: FunctionRunner(
                spec,
                {**env, **iam.function_environment(name)},
                self.config.concurrency,
                logs / f"{name}.log",
                on_injected=faults.count if faults is not None else None,
            )
            for name, spec in self.stack.functions.items()
        }
        self._invoker = AsyncInvoker(
            self._runners,
            self.client("sqs"),
            retry_delays=self.config.retry_delays,
            destination_clients=iam.destination_clients(self.config.region),
        )
        sqs = self.client("sqs")
        self._pollers = [
            EventSourcePoller(source, sqs, self._invoker, faults, gate if iam.mode != "off" else None)
            for source in self.stack.sources
        ]
        for poller in self._pollers:
            poller.start()
        from asyncinfer.local.lambda_api import LambdaApi

        self._lambda_api = LambdaApi(
            self._runners, self._invoker, self.config.host, self.config.ports.lambda_api, iam.request_gate("lambda")
        )
        self.lambda_url = self._lambda_api.start()

    @property
    def invoker(self) -> AsyncInvoker:
        assert self._invoker is not None
        return self._invoker

    def fault_counts(self) -> dict[str, int]:
        """Faults injected so far (empty without a fault plan), with the emulator's own fault-related counters."""
        if self.faults is None:
            return {}
        counts = self.faults.counts()
        if self._emulator is not None and self.stack is not None:
            for endpoint in self.stack.endpoints:
                stats = self._emulator.stats(endpoint)
                for key in ("container_refused", "upload_retries", "upload_failures", "expired", "timed_out"):
                    counts[f"endpoint:{key}"] = counts.get(f"endpoint:{key}", 0) + int(stats[key])
        return counts

    def busy(self) -> bool:
        """Whether anything is still moving: deliveries held back, invocations running or waiting for a retry,
        requests queued or running on an endpoint. (Trigger queues are not looked at: the caller waits for those
        through what they cause.)"""
        if any(poller.delayed for poller in self._pollers):
            return True
        if self._invoker is not None and not self._invoker.wait_idle(0):
            return True
        if self._emulator is not None and self.stack is not None:
            return any(self._emulator.stats(e)["backlog"] for e in self.stack.endpoints)
        return False

    def _write_fault_counts(self) -> None:
        path = self.config.state_dir / FAULT_COUNTS_FILE
        while True:
            try:
                tmp = path.with_suffix(".tmp")
                tmp.write_text(json.dumps(self.fault_counts(), indent=1) + "\n", encoding="utf-8")
                tmp.replace(path)
            except Exception:  # the counters are informative; never let them stop anything
                logging.getLogger(__name__).debug("could not write %s", path, exc_info=True)
            if self._counts_stop.wait(1.0):
                return

    def _write_state(self) -> None:
        assert self.stack is not None
        self.config.state_dir.mkdir(parents=True, exist_ok=True)
        state = {
            "pid": os.getpid(),
            "aws_endpoint_url": self.aws_endpoint_url,
            "sagemaker_runtime_url": self.sagemaker_runtime_url,
            "lambda_url": self.lambda_url,
            "model_container_url": self.container_url,
            "model_server": self.model_server if self.config.container_url is None else "external",
            "region": self.config.region,
            "stack_name": self.config.stack_name,
            "parameters": self.stack.parameters,  # what asyncinfer deploy (stack_update.py) changes from
            "outputs": self.stack.outputs,
            "not_emulated": {**self.stack.not_emulated, **self._model_not_emulated()},
            # The emulated clock (time_scale.py): CloudWatch timestamps and scaling times are in it.
            "time_scale": self.config.time_scale,
            "time_anchor": self._life.clock.anchor if self._life is not None else None,
            "instance_start_seconds": self.config.instance_start_seconds,
            "iam": self.iam.state(),
        }
        if self.faults is not None:
            state["faults"] = self.faults.plan.to_json()
            state["function_timeout"] = self.config.function_timeout
            self._counts_thread = threading.Thread(target=self._write_fault_counts, name="fault-counts", daemon=True)
            self._counts_thread.start()
        self.config.state_file.write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")
