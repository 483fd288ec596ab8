"""4. Local pipeline throughput and the latency it adds, against the model container itself.

One local stack (moto server, endpoint emulator, model container, Lambda runtime: ``tests/support.py``), then:

1. direct: the same small CSV files POSTed to the model container's ``/invocations`` by as many threads as the
   endpoint runs invocations at once (instances x MaxConcurrentInvocationsPerInstance): the machine's limit for
   this model at that concurrency;
2. saturated: every file uploaded to the input bucket at once; throughput = files / (last result event - first
   upload); every file must get exactly one result event;
3. paced: files uploaded one by one at half the saturated rate, so that latency is the hops' and not the queue's;
   added latency per file = (result event received - upload done) - the file's own direct latency (measured
   alone, unloaded).

CPU is accounted per process: this one (moto, emulator, model, pollers: one GIL) and the Lambda workers.
"""

from __future__ import annotations

import http.client
import json
import resource
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from bench.common import Section, ensure_paths, median, percentile

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

TARGET_RATIO = 0.5
#: IAM enforcement (the default) may cost at most this share of the pipeline's throughput with IAM off (issue 11).
IAM_COST_TARGET = 0.25


class Arrivals:
    """Drains the results queue in the background and notes when each input key's event arrived."""

    def __init__(self, sqs: SQSClient, queue_url: str) -> None:
        from asyncinfer.queue_drain import QueueDrain

        self.times: dict[str, list[float]] = {}
        self.statuses: dict[str, str] = {}
        self._lock = threading.Lock()
        self._drain = QueueDrain(sqs, queue_url, self._take, "bench-results")

    def _take(self, body: str, received_at: float) -> None:
        from async_pipeline import s3_uris

        detail = json.loads(body)["detail"]
        location = detail.get("inputLocation")
        key = s3_uris.key_of(str(location)) if location else ""
        with self._lock:
            self.times.setdefault(key, []).append(received_at)
            self.statuses[key] = str(detail.get("status"))

    def count(self, keys: list[str]) -> int:
        with self._lock:
            return sum(1 for key in keys if key in self.times)

    def wait(self, keys: list[str], timeout: float) -> bool:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.count(keys) == len(keys):
                return True
            time.sleep(0.1)
        return False

    def stop(self) -> None:
        self._drain.stop()


def _post(url: str) -> Callable[[bytes], float]:
    """POST one payload to the container as the endpoint emulator does (a connection per invocation)."""
    parts = urlsplit(url)

    def post(body: bytes) -> float:
        start = time.perf_counter()
        conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=60)
        try:
            conn.request("POST", "/invocations", body=body, headers={"Content-Type": "text/csv", "Accept": "text/csv"})
            response = conn.getresponse()
            response.read()
        finally:
            conn.close()
        elapsed = time.perf_counter() - start
        if response.status != 200:
            raise RuntimeError(f"the model answered {response.status}")
        return elapsed

    return post


def _cpu() -> tuple[float, float]:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


def _request_costs(aws_url: str) -> dict[str, dict[str, float]]:
    """moto's own count of requests and their CPU time, by operation, so far (asyncinfer.local.moto_server)."""
    from asyncinfer.local.moto_server import STATS_PATH

    with urllib.request.urlopen(aws_url + STATS_PATH, timeout=10) as reply:
        costs: dict[str, dict[str, float]] = json.load(reply)
    return costs


def per_request_rows(before: dict[str, dict[str, float]], after: dict[str, dict[str, float]], files: int) -> Section:
    """Requests per file and CPU per request, by operation, between two readings of moto's counts."""
    rows: Section = {}
    for operation, now in sorted(after.items()):
        requests = now["requests"] - before.get(operation, {}).get("requests", 0)
        cpu_ms = now["cpu_ms"] - before.get(operation, {}).get("cpu_ms", 0.0)
        if requests > 0:
            rows[operation] = {
                "requests_per_file": round(requests / files, 2),
                "cpu_ms_per_request": round(cpu_ms / requests, 2),
                "cpu_ms_per_file": round(cpu_ms / files, 2),
            }
    return rows


def _latencies(values: list[float], scale: float = 1.0) -> dict[str, float]:
    return {name: round(percentile(values, q) * scale, 3) for name, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))}


def measure(
    files: int, paced_files: int, model_latency: float, log: Callable[[str], None], iam: str = "enforce"
) -> Section:
    """Direct, saturated and (when ``paced_files``) paced runs on one local stack (IAM as ``iam`` says)."""
    ensure_paths()
    import boto3
    from botocore.config import Config

    from asyncinfer import target
    from asyncinfer.model import demo
    from tests.support import local_stack

    tag = f"m{int(model_latency * 1000)}"
    bodies = {f"bench/{tag}/{i:04d}.csv": demo.make_csv_payload(1 + i % 3, seed=i) for i in range(files)}
    paced = {f"paced/{i:04d}.csv": demo.make_csv_payload(1 + i % 3, seed=files + i) for i in range(paced_files)}
    cpu_before = _cpu()
    with (
        tempfile.TemporaryDirectory(prefix="bench-stack-") as state,
        local_stack(Path(state), model_latency_seconds=model_latency, iam=iam) as running,
    ):
        assert running.stack is not None
        stack = target.local(Path(state))
        (endpoint_name,) = running.stack.endpoints
        concurrency = int(running.emulator.stats(endpoint_name)["workers"])
        log(f"throughput: local stack up (model latency {model_latency} s, {concurrency} invocations at once)")

        # 1. The model container alone, same files, same concurrency.
        post = _post(running.container_url)
        with ThreadPoolExecutor(concurrency) as pool:
            list(pool.map(post, list(bodies.values())[: 2 * concurrency]))  # warm-up
            start = time.perf_counter()
            direct_latencies = list(pool.map(post, bodies.values()))
            direct_seconds = time.perf_counter() - start
        direct_rate = files / direct_seconds
        log(f"throughput: direct {direct_rate:.1f} files/s")

        # 2. Saturated: every file dropped at once.
        session = boto3.Session(aws_access_key_id="local", aws_secret_access_key="local", region_name=stack.region)
        s3 = session.client("s3", endpoint_url=stack.endpoint_url, config=Config(max_pool_connections=16))
        bucket = stack.outputs["InputBucketName"]
        arrivals = Arrivals(stack.client("sqs"), stack.outputs["ResultsQueueUrl"])
        uploaded: dict[str, float] = {}

        def upload(key: str, body: bytes) -> None:
            s3.put_object(Bucket=bucket, Key=key, Body=body)
            uploaded[key] = time.time()

        keys = list(bodies)
        own_before, _ = _cpu()
        moto_before, costs_before = running.moto.cpu_seconds(), _request_costs(running.aws_endpoint_url)
        started = time.time()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda key: upload(key, bodies[key]), keys))
        log(f"throughput: {files} files uploaded in {time.time() - started:.1f} s; waiting for their events")
        complete = arrivals.wait(keys, timeout=max(300.0, files * 0.5))
        own_after, _ = _cpu()
        moto_after, costs_after = running.moto.cpu_seconds(), _request_costs(running.aws_endpoint_url)
        done = arrivals.count(keys)
        last = max(arrivals.times[key][0] for key in keys if key in arrivals.times)
        pipeline_rate = done / (last - started)
        saturated = [arrivals.times[key][0] - uploaded[key] for key in keys if key in arrivals.times]
        log(f"throughput: pipeline {pipeline_rate:.1f} files/s ({done}/{files} files)")

        # 3. Paced at half the saturated rate: the latency of the hops, not of the queue.
        alone: dict[str, float] = {}
        interval = 2.0 / max(pipeline_rate, 0.1)
        for key, body in paced.items():
            alone[key] = post(body)
        for key, body in paced.items():
            tick = time.time()
            upload(key, body)
            time.sleep(max(0.0, interval - (time.time() - tick)))
        paced_keys = list(paced)
        arrivals.wait(paced_keys, timeout=120.0)
        time.sleep(2.0)  # a late duplicate would show up here
        arrivals.stop()
        end_to_end = [arrivals.times[key][0] - uploaded[key] for key in paced_keys if key in arrivals.times]
        added = [arrivals.times[key][0] - uploaded[key] - alone[key] for key in paced_keys if key in arrivals.times]
        all_keys = keys + paced_keys
        events_per_file = sorted({len(arrivals.times.get(key, [])) for key in all_keys})
        statuses = sorted({arrivals.statuses.get(key, "none") for key in all_keys})
        lambda_stats = {name: vars(stat) for name, stat in running.invoker.stats.items()}
        moto_total = running.moto.cpu_seconds()  # moto is a child too: taken out of the workers' figure below
    _, children_after = _cpu()
    result: Section = {
        "iam": iam,
        "model_latency_s": model_latency,
        "files": files,
        "concurrency": concurrency,
        "direct": {"files_per_second": round(direct_rate, 2), "latency_ms": _latencies(direct_latencies, 1000)},
        "pipeline": {
            "files_per_second": round(pipeline_rate, 2),
            "complete": complete,
            "latency_s": _latencies(saturated),
        },
        "ratio": round(pipeline_rate / direct_rate, 4),
        "meets_target": pipeline_rate / direct_rate >= TARGET_RATIO,
        "events_per_file": events_per_file,
        "statuses": statuses,
        "cpu_ms_per_file": {
            "stack_process": round((own_after - own_before) * 1000 / files, 1),
            "moto_process": round((moto_after - moto_before) * 1000 / files, 1),
            "lambda_workers": round((children_after - cpu_before[1] - moto_total) * 1000 / len(all_keys), 1),
        },
        "moto_requests": per_request_rows(costs_before, costs_after, files),
        "lambda": lambda_stats,
    }
    if paced:
        result["paced"] = {
            "files": paced_files,
            "interval_s": round(interval, 3),
            "end_to_end_s": _latencies(end_to_end),
            "added_s": _latencies(added),
            "direct_alone_ms_median": round(median(list(alone.values())) * 1000, 2),
        }
    return result


def run(
    files: int, paced_files: int, model_bound_files: int, model_latency: float, log: Callable[[str], None]
) -> Section:
    runs = [measure(files, paced_files, 0.0, log)]
    # The same files with IAM off: what enforcement costs the pipeline's throughput.
    unenforced = measure(files, 0, 0.0, log, iam="off")
    runs.append(unenforced)
    if model_bound_files:
        runs.append(measure(model_bound_files, 0, model_latency, log))
    enforced_rate = runs[0]["pipeline"]["files_per_second"]
    cost = 1 - enforced_rate / unenforced["pipeline"]["files_per_second"]
    return {
        "target_ratio": TARGET_RATIO,
        "runs": runs,
        "iam_cost": {"share": round(cost, 4), "target": IAM_COST_TARGET, "meets_target": cost <= IAM_COST_TARGET},
    }


def summary_rows(section: Section) -> list[list[str]]:
    rows = []
    for result in section["runs"]:
        model = "demo model" if not result["model_latency_s"] else f"model + {result['model_latency_s']:g} s"
        name = f"{result['files']} files, {model}, IAM {result.get('iam', 'enforce')}"
        rows.append(
            [
                name,
                f"{result['direct']['files_per_second']:.1f}",
                f"{result['pipeline']['files_per_second']:.1f}",
                f"{result['ratio']:.3f}",
                "yes" if result["meets_target"] else "no",
                " / ".join(f"{result['pipeline']['latency_s'][p]:.1f}" for p in ("p50", "p95", "p99")),
                " / ".join(f"{result['paced']['added_s'][p]:.3f}" for p in ("p50", "p95", "p99"))
                if "paced" in result
                else "-",
                "yes" if result["events_per_file"] == [1] else f"no: {result['events_per_file']}",
            ]
        )
    return rows


def request_rows(result: Section) -> list[list[str]]:
    """moto's requests per file and CPU per request by operation (saturated run), costliest first, then the total."""
    rows = sorted(result.get("moto_requests", {}).items(), key=lambda item: -item[1]["cpu_ms_per_file"])
    lines = [
        [op, f"{r['requests_per_file']:.2f}", f"{r['cpu_ms_per_request']:.2f}", f"{r['cpu_ms_per_file']:.1f}"]
        for op, r in rows
    ]
    if rows:
        requests = sum(r["requests_per_file"] for _, r in rows)
        cpu = sum(r["cpu_ms_per_file"] for _, r in rows)
        lines.append(["all", f"{requests:.2f}", f"{cpu / requests:.2f}", f"{cpu:.1f}"])
    return lines


def cpu_rows(section: Section) -> list[list[str]]:
    """CPU per file by process, for each run."""
    rows = []
    for result in section["runs"]:
        cpu = result["cpu_ms_per_file"]
        rows.append(
            [
                f"{result['files']} files, model + {result['model_latency_s']:g} s, IAM {result.get('iam', 'enforce')}",
                *(f"{cpu.get(name, 0.0):.1f}" for name in ("stack_process", "moto_process", "lambda_workers")),
            ]
        )
    return rows
