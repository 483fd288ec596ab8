"""``make bench``: every benchmark side by side, a table of the figures, and ``bench/results.json``.

    python -m bench.run                      # everything (about 6-8 minutes on 2 cores)
    python -m bench.run --only calls overhead
    python -m bench.run --quick              # fewer files, for a look while changing code

Timings depend on the machine and on what else runs on it: compare figures taken on the same machine, idle.
The deterministic figures (AWS calls per file) are also asserted in tests/unit/test_aws_calls.py.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from bench import calls, cold_start, overhead, sizes, throughput
from bench.common import ROOT, Section, table

SECTIONS = ("sizes", "cold", "calls", "overhead", "throughput")
RESULTS = ROOT / "bench" / "results.json"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _machine() -> Section:
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False)
    dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True, check=False)
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": commit.stdout.strip() or None,
        "uncommitted_changes": bool(dirty.stdout.strip()),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average_at_start": os.getloadavg(),
    }


def _timed(results: Section, name: str, action: Callable[[], Section]) -> None:
    started = time.time()
    results[name] = action()
    results[name]["seconds"] = round(time.time() - started, 1)


def report(results: Section) -> str:
    """The figures as Markdown: targets first, then each section's detail."""
    parts: list[str] = []
    targets: list[list[str]] = []
    if "cold" in results:
        for setup in results["cold"]["setups"]:
            worst = max(setup["functions"].values(), key=lambda f: f["ratio"])
            targets.append(
                [
                    f"1. cold init / import boto3 ({setup['setup']}, tracing {'on' if setup['tracing'] else 'off'})",
                    "<= 1.25",
                    f"{worst['ratio']:.2f} (worst of 3)",
                    "yes" if worst["meets_target"] else "no",
                ]
            )
    if "calls" in results:
        section = results["calls"]
        targets.append(
            [
                "2. AWS calls per file, happy path",
                "<= 5",
                str(section["per_file_completed"]),
                _yes(section["meets_target"]),
            ]
        )
        targets.append(
            [
                "2. extra calls for a duplicate S3 or SNS delivery",
                "<= 1, no 2nd inference/event",
                f"{section['duplicate_delivery_extra']} ({section['endpoint_invocations']} inferences, "
                f"{section['result_events']} events for 2 + 1 files)",
                _yes(section["duplicate_delivery_extra"] <= 1),
            ]
        )
    if "overhead" in results:
        own = [r for r in results["overhead"]["results"] if r["stub"] == "handler"]
        worst = max(max(r["cpu_ms_per_record"].values()) for r in own)
        targets.append(
            [
                "3. warm CPU per record (worst handler, 1 or 100 records)",
                "<= 1 ms",
                f"{worst:.3f} ms",
                _yes(worst <= overhead.TARGET_MS_PER_RECORD),
            ]
        )
    if "throughput" in results:
        first = results["throughput"]["runs"][0]
        targets.append(
            [
                f"4. local pipeline / direct to the model ({first['files']} files)",
                ">= 0.5",
                f"{first['ratio']:.3f}",
                _yes(first["meets_target"]),
            ]
        )
        if "paced" in first:
            added = first["paced"]["added_s"]
            targets.append(
                [
                    "4. latency the pipeline adds, p50 / p95 / p99 (paced)",
                    "(report)",
                    " / ".join(f"{added[p] * 1000:.0f} ms" for p in ("p50", "p95", "p99")),
                    "",
                ]
            )
    parts.append("## Targets\n\n" + table(["measure", "target", "result", "met"], targets))
    if "cold" in results:
        parts.append(
            "## 1. Cold init (median ms of a fresh interpreter's import)\n\n"
            + table(
                ["set-up", "function", "handler ms", "boto3 ms", "ratio", "<= 1.25"],
                cold_start.summary_rows(results["cold"]),
            )
        )
    if "calls" in results:
        parts.append(
            "## 2. AWS calls\n\n" + table(["scenario", "calls", "operations"], calls.summary_rows(results["calls"]))
        )
    if "overhead" in results:
        parts.append(
            "## 3. Warm CPU per record (ms)\n\n"
            + table(
                ["stub", "function", "1-record event", "100-record event", "<= 1 ms"],
                overhead.summary_rows(results["overhead"]),
            )
        )
    if "throughput" in results:
        parts.append(
            "## 4. Local throughput (files/s) and latency (s)\n\n"
            + table(
                [
                    "run",
                    "direct",
                    "pipeline",
                    "ratio",
                    ">= 0.5",
                    "latency saturated p50/95/99",
                    "added, paced p50/95/99",
                    "1 event per file",
                ],
                throughput.summary_rows(results["throughput"]),
            )
        )
        iam_cost = results["throughput"].get("iam_cost")
        if iam_cost:
            parts.append(
                f"IAM enforcement costs {iam_cost['share']:.1%} of the pipeline's throughput with IAM off "
                f"(target <= {iam_cost['target']:.0%}: {'met' if iam_cost['meets_target'] else 'NOT met'})."
            )
        parts.append(
            "### CPU per file, by process (ms)\n\n"
            + table(
                ["run", "stack (emulator, Lambda runtime, pollers)", "moto", "Lambda workers"],
                throughput.cpu_rows(results["throughput"]),
            )
        )
        first_run = results["throughput"]["runs"][0]
        if first_run.get("moto_requests"):
            parts.append(
                "### moto requests per file and their CPU (saturated run)\n\n"
                + table(
                    ["operation", "requests per file", "CPU ms per request", "CPU ms per file"],
                    throughput.request_rows(first_run),
                )
            )
    if "sizes" in results:
        parts.append(
            "## 5. sam build artifacts\n\n"
            + table(["artifact", "unzipped", "zipped", "files", ".pyc"], sizes.summary_rows(results["sizes"]))
        )
    return "\n\n".join(parts) + "\n"


def _yes(value: bool) -> str:
    return "yes" if value else "no"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS), help="sections to run")
    parser.add_argument("--runs", type=int, default=10, help="cold start: rounds per set-up (>= 10)")
    parser.add_argument("--files", type=int, default=1000, help="throughput: files dropped at once")
    parser.add_argument("--paced-files", type=int, default=200, help="throughput: files for the added latency")
    parser.add_argument("--model-bound-files", type=int, default=160, help="throughput: files with a slow model")
    parser.add_argument("--model-latency", type=float, default=0.5, help="throughput: the slow model's seconds")
    parser.add_argument("--quick", action="store_true", help="200 files, 50 paced, no slow-model run")
    parser.add_argument("--output", type=Path, default=RESULTS, help="where to write the JSON results")
    args = parser.parse_args(argv)
    if args.quick:
        args.files, args.paced_files, args.model_bound_files = 200, 50, 0

    results: Section = {"machine": _machine()}
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="bench-") as scratch:
        build_dir: Path | None = None
        skipped: str | None = "not run"
        if "sizes" in args.only or "cold" in args.only:
            build_dir, skipped = sizes.build(Path(scratch), log)
            if build_dir is None:
                log(f"sizes: {skipped}")
        if "sizes" in args.only:
            _timed(results, "sizes", lambda: sizes.run(build_dir, skipped))
        if "cold" in args.only:
            _timed(results, "cold", lambda: cold_start.run(args.runs, build_dir, log))
        if "calls" in args.only:
            log("calls: counting AWS calls per file against moto")
            _timed(results, "calls", calls.run)
        if "overhead" in args.only:
            log("overhead: warm CPU per record")
            _timed(results, "overhead", overhead.run)
        if "throughput" in args.only:
            _timed(
                results,
                "throughput",
                lambda: throughput.run(args.files, args.paced_files, args.model_bound_files, args.model_latency, log),
            )
    results["seconds"] = round(time.time() - started, 1)
    if set(args.only) != set(SECTIONS) and args.output.exists():
        # A partial run updates its sections and keeps the others' last figures.
        kept = json.loads(args.output.read_text(encoding="utf-8"))
        results = {**{k: v for k, v in kept.items() if k in SECTIONS}, **results}
    args.output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(report(results))
    log(f"wrote {args.output} ({results['seconds']:.0f} s in all)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
