"""1. Cold init: a fresh interpreter importing each handler module, against one importing boto3 alone.

Every sample is a new interpreter started with ``-S -I`` (no site, no environment-driven paths) whose ``sys.path``
is set the way Lambda sets it: the function's code first, then the layer, then the packages. Only the import is
timed (interpreter start-up is the same for both sides). Targets are interleaved round by round, each round in a
rotated order, and the median of each is taken; the ratio is median(handler) / median(``import boto3``).

Set-ups:

* ``dev``: ``functions/<name>`` + ``layers/shared`` + the dev venv's site-packages (what the tests import).
* ``built``: the ``sam build`` output as it is (function artifact + the layer's ``python/``: exactly the files Lambda
  gets, the layer byte-compiled by its Makefile), run with ``-B``: Lambda's ``/opt`` and ``/var/task`` are
  read-only, so the interpreter uses the ``.pyc`` files that were shipped and writes none.
* ``built-no-pyc``: the same files with every ``.pyc`` removed, with ``-B``: what a layer built without
  compiling costs, since every cold start then compiles every module the layer supplies, boto3 and botocore
  included.

Each set-up is measured with tracing off (``POWERTOOLS_TRACE_DISABLED=true``, as the local stack and tests run)
and on (as deployed: ``Tracing: Active``, so Powertools' Tracer imports the X-Ray SDK and patches botocore).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sysconfig
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import FUNCTIONS, LAYER, LOGICAL_IDS, PYTHON, median

TARGETS = ("boto3", *FUNCTIONS)
TARGET_RATIO = 1.25

_CHILD = """
import sys, time
sys.path[:0] = {paths!r}
start = time.perf_counter()
__import__({module!r})
elapsed = time.perf_counter() - start
import json
print(json.dumps([elapsed, "boto3" in sys.modules, "aws_xray_sdk.core" in sys.modules, len(sys.modules)]))
"""


@dataclass(frozen=True)
class Setup:
    name: str
    describe: str
    paths: Callable[[str], list[str]]  # handler module (or "boto3") -> sys.path prefix
    tracing: bool
    read_only: bool = False  # -B: .pyc files are read, never written (Lambda's code and layers are read-only)


def lambda_environment(module: str, code_dir: str, *, tracing: bool) -> dict[str, str]:
    """What Lambda puts in the environment of a python3.13 function of template.yaml (values are placeholders)."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "TZ": ":UTC",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
        "AWS_LAMBDA_FUNCTION_NAME": f"bench-{module}",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/bench-{module}",
        "LAMBDA_TASK_ROOT": code_dir,
        "LAMBDA_RUNTIME_DIR": "/var/runtime",
        "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000",
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_SESSION_TOKEN": "bench",
        "POWERTOOLS_SERVICE_NAME": "async-inference-pipeline",
        "POWERTOOLS_METRICS_NAMESPACE": "AsyncInferencePipeline",
        "POWERTOOLS_LOG_LEVEL": "INFO",
        "JOBS_TABLE_NAME": "jobs",
        "EVENT_BUS_NAME": "results",
        "ENDPOINT_NAME": "endpoint",
        "JOB_RETENTION_DAYS": "30",
        "SUCCESS_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:success",
        "ERROR_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:error",
    }
    if not tracing:
        env["POWERTOOLS_TRACE_DISABLED"] = "true"
    return env


def _sample(setup: Setup, module: str) -> tuple[float, bool, bool, int]:
    paths = setup.paths(module)
    code = _CHILD.format(paths=paths, module=module)
    command = [PYTHON, "-S", "-I", *(["-B"] if setup.read_only else []), "-c", code]
    env = lambda_environment(module, paths[0], tracing=setup.tracing)
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False, cwd=paths[0])
    if done.returncode != 0:
        raise RuntimeError(f"importing {module} ({setup.name}) failed:\n{done.stderr[-2000:]}")
    elapsed, has_boto3, has_xray, modules = json.loads(done.stdout.strip().splitlines()[-1])
    return float(elapsed), bool(has_boto3), bool(has_xray), int(modules)


def measure(setup: Setup, runs: int) -> dict[str, Any]:
    samples: dict[str, list[float]] = {target: [] for target in TARGETS}
    facts: dict[str, dict[str, Any]] = {}
    for target in TARGETS:  # warm-up (writes .pyc where allowed, fills the page cache); not counted
        _, has_boto3, has_xray, modules = _sample(setup, target)
        facts[target] = {"boto3_imported": has_boto3, "xray_sdk_imported": has_xray, "modules": modules}
    for round_ in range(runs):
        shift = round_ % len(TARGETS)
        for target in TARGETS[shift:] + TARGETS[:shift]:
            samples[target].append(_sample(setup, target)[0] * 1000)
    floor = median(samples["boto3"])
    result: dict[str, Any] = {
        "setup": setup.name,
        "describe": setup.describe,
        "tracing": setup.tracing,
        "runs": runs,
        "boto3_ms": round(floor, 1),
        "functions": {},
    }
    for module in FUNCTIONS:
        handler = median(samples[module])
        result["functions"][module] = {
            "median_ms": round(handler, 1),
            "ratio": round(handler / floor, 3),
            "meets_target": handler / floor <= TARGET_RATIO,
            **facts[module],
        }
    result["samples_ms"] = {target: [round(v, 2) for v in values] for target, values in samples.items()}
    return result


def _dev_paths(module: str) -> list[str]:
    code = FUNCTIONS.get(module, FUNCTIONS["submitter"])
    return [str(code), str(LAYER), sysconfig.get_paths()["purelib"]]


def _built_paths(build_dir: Path) -> Callable[[str], list[str]]:
    def paths(module: str) -> list[str]:
        code = build_dir / LOGICAL_IDS.get(module, "SubmitterFunction")
        return [str(code), str(build_dir / "SharedLayer" / "python")]

    return paths


def setups(build_dir: Path | None, scratch: Path) -> list[Setup]:
    found = [
        Setup("dev", "functions/ + layers/shared + dev venv site-packages", _dev_paths, tracing=False),
        Setup("dev", "functions/ + layers/shared + dev venv site-packages", _dev_paths, tracing=True),
    ]
    if build_dir is None:
        return found
    for tracing in (False, True):
        found.append(
            Setup(
                "built",
                "sam build output as it is (read-only, as on Lambda)",
                _built_paths(build_dir),
                tracing,
                read_only=True,
            )
        )
    plain = scratch / "plain"
    shutil.copytree(build_dir, plain, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for tracing in (False, True):
        found.append(
            Setup(
                "built-no-pyc",
                "sam build output without its .pyc files (read-only, as on Lambda)",
                _built_paths(plain),
                tracing,
                read_only=True,
            )
        )
    return found


def run(runs: int, build_dir: Path | None, log: Callable[[str], None]) -> dict[str, Any]:
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-cold-") as scratch:
        for setup in setups(build_dir, Path(scratch)):
            log(f"cold start: {setup.name}, tracing {'on' if setup.tracing else 'off'} ({runs} rounds)")
            results.append(measure(setup, runs))
    return {"target_ratio": TARGET_RATIO, "setups": results}


def summary_rows(section: dict[str, Any]) -> list[list[str]]:
    rows = []
    for result in section["setups"]:
        for module, figures in result["functions"].items():
            rows.append(
                [
                    f"{result['setup']} / tracing {'on' if result['tracing'] else 'off'}",
                    module,
                    f"{figures['median_ms']:.0f}",
                    f"{result['boto3_ms']:.0f}",
                    f"{figures['ratio']:.2f}",
                    "yes" if figures["meets_target"] else "no",
                ]
            )
    return rows


if __name__ == "__main__":  # a quick look: python -m bench.cold_start
    print(json.dumps(run(10, None, print), indent=2)[:4000])
