"""The soak's report: the file it is written to and the rows of its fault table."""

from __future__ import annotations

from asyncinfer.faults import CATALOGUE

REPORT_FILE = "soak-report.json"


def fault_rows(counts: dict[str, int]) -> list[tuple[str, str]]:
    """(fault, injections) for the report, in catalogue order, with what each count means."""
    rows = []
    for name in CATALOGUE:
        parts = []
        if name in counts:
            parts.append(f"{counts[name]} injected")
        if f"{name}:episodes" in counts:
            parts.append(f"{counts[f'{name}:episodes']} episode(s)")
        for detail in ("overwrites", "deletes"):
            if f"{name}:{detail}" in counts:
                parts.append(f"{counts[f'{name}:{detail}']} {detail}")
        if parts:
            rows.append((name, ", ".join(parts)))
    for key, label in (
        ("endpoint:container_refused", "calls refused while the container was down (held, retried)"),
        ("endpoint:timed_out", "container calls past InvocationTimeoutSeconds"),
        ("endpoint:expired", "requests expired (RequestTTLSeconds)"),
        ("endpoint:upload_retries", "output writes retried"),
        ("endpoint:upload_failures", "output writes given up (ResponseUploadFailures)"),
    ):
        if counts.get(key):
            rows.append((f"  {label}", str(counts[key])))
    return rows
