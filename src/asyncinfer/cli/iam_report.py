"""The least-privilege report of a local stack run (iam-report.json, written when the stack stops), as a table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.table import Table

from asyncinfer.cli.display import console
from asyncinfer.local.stack_iam import REPORT_FILE


def report_table(report: dict[str, Any]) -> Table:
    table = Table(title=f"IAM ({report['mode']}): least privilege of this run", show_lines=True)
    table.add_column("role")
    table.add_column("used", overflow="fold")
    table.add_column("denied", overflow="fold")
    table.add_column("granted, never used (why: iam-report.json)", overflow="fold")
    for role in report["roles"]:
        used = "\n".join(f"{u['action']} x{u['requests']}" for u in role["used"]) or "-"
        denied = "\n".join(f"{d['action']} on {d['resource']} x{d['count']}" for d in role["denied"]) or "-"
        unused = "\n".join(
            f"{g['statement'].rsplit('#', 1)[-1]}: {', '.join(a.split(':', 1)[-1] for a in g['actions'])}"
            + ("" if g["explanation"] else " (UNEXPLAINED)")
            for g in role["unused"]
        )
        table.add_row(role["role"], used, denied, unused or "-")
    return table


def show_report(state_dir: Path) -> None:
    """Print the report the stopped stack left in ``state_dir`` (nothing if it left none)."""
    path = state_dir / REPORT_FILE
    if not path.exists():
        return
    report = json.loads(path.read_text(encoding="utf-8"))
    console.print(report_table(report))
    unexplained = [g for r in report["roles"] for g in r["unused"] if not g["explanation"]]
    denied = sum(len(r["denied"]) for r in report["roles"])
    console.print(
        f"IAM report: {path} ({denied} denied check(s), {len(unexplained)} unexplained unused grant(s); "
        f"every decision in logs/iam-decisions.jsonl)"
    )
