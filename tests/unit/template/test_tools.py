"""The tools themselves on the template (slow): cfn-lint, `sam validate --lint`, checkov (its own environment:
CHECKOV, default .venv-checkov/bin/checkov) and `sam build` into a temporary directory."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.samples import ROOT, TEMPLATE
from tests.unit.template.support import (
    BIN,
    FUNCTIONS,
    LAYER_REQUIREMENTS,
    load_template,
    run,
)


# ----------------------------------------------------------------------------------------------------------- tools
def _tool_output(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"


@pytest.mark.slow
def test_cfn_lint_has_no_findings() -> None:
    result = run([BIN / "cfn-lint", TEMPLATE])
    assert result.returncode == 0, _tool_output(result)
    assert result.stdout.strip() == "", _tool_output(result)
    assert result.stderr.strip() == "", _tool_output(result)


@pytest.mark.slow
def test_sam_validate_lint_has_no_findings() -> None:
    result = run([BIN / "sam", "validate", "--lint", "--template", TEMPLATE])
    assert result.returncode == 0, _tool_output(result)
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert lines == [f"{TEMPLATE} is a valid SAM Template"], _tool_output(result)


def _checkov() -> Path:
    checkov = Path(os.environ.get("CHECKOV", ROOT / ".venv-checkov" / "bin" / "checkov"))
    if not checkov.is_file():
        pytest.fail(f"checkov not found at {checkov}: run `make .venv-checkov/.stamp` or set CHECKOV")
    return checkov


def _checkov_scan(checkov: Path, path: Path) -> dict[str, Any]:
    result = run([checkov, "--framework", "cloudformation", "--skip-download", "--output", "json", "--file", path])
    assert result.returncode in {0, 1}, _tool_output(result)
    report = json.loads(result.stdout)
    report = report[0] if isinstance(report, list) else report
    assert report["check_type"] == "cloudformation", _tool_output(result)
    assert report["summary"]["parsing_errors"] == 0
    scan: dict[str, Any] = report
    return scan


@pytest.fixture(scope="module")
def checkov_reports(
    raw: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> tuple[dict[str, Any], dict[str, Any]]:
    """checkov on the template, and on a copy without its checkov skips (both at once)."""
    checkov = _checkov()
    unskipped = load_template()
    for resource in unskipped["Resources"].values():
        resource.get("Metadata", {}).pop("checkov", None)
    copy = tmp_path_factory.mktemp("checkov") / "template-without-skips.json"
    copy.write_text(json.dumps(unskipped))
    with ThreadPoolExecutor(max_workers=2) as pool:
        template_scan = pool.submit(_checkov_scan, checkov, TEMPLATE)
        unskipped_scan = pool.submit(_checkov_scan, checkov, copy)
        return template_scan.result(), unskipped_scan.result()


@pytest.mark.slow
def test_checkov_has_no_failed_check_and_every_skip_has_a_reason(
    checkov_reports: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    report, _ = checkov_reports
    failed = [(c["check_id"], c["resource"], c["check_name"]) for c in report["results"]["failed_checks"]]
    assert failed == []
    assert report["summary"]["passed"] > 50
    for check in report["results"]["skipped_checks"]:
        reason = check["check_result"].get("suppress_comment", "")
        assert len(reason) > 30, f"skip of {check['check_id']} on {check['resource']} needs a reason"


@pytest.mark.slow
def test_checkov_skips_are_all_needed(checkov_reports: tuple[dict[str, Any], dict[str, Any]]) -> None:
    report, unskipped = checkov_reports
    skipped = {(c["check_id"], c["resource"]) for c in report["results"]["skipped_checks"]}
    would_fail = {(c["check_id"], c["resource"]) for c in unskipped["results"]["failed_checks"]}
    assert skipped == would_fail, "a skip that silences nothing is stale; a failure without a skip is a finding"


def _python313_dir() -> Path:
    found = shutil.which("python3.13")
    if found:
        return Path(found).parent
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates = sorted(pyenv_root.glob("versions/3.13*/bin/python3.13"), reverse=True)
    if not candidates:
        pytest.fail("sam build needs python3.13 on PATH (or under pyenv) for the python3.13 runtime")
    return candidates[0].parent


@pytest.mark.slow
def test_sam_build(tmp_path: Path) -> None:
    build = tmp_path / "build"
    path = os.pathsep.join([str(_python313_dir()), str(BIN), os.environ.get("PATH", "")])
    result = run(
        [
            BIN / "sam",
            "build",
            "--template-file",
            TEMPLATE,
            "--build-dir",
            build,
            "--cache-dir",
            tmp_path / "cache",
            "--no-cached",
        ],
        env={"PATH": path},
    )
    assert result.returncode == 0, _tool_output(result)
    assert (build / "template.yaml").is_file()
    for function, (code_uri, handler) in FUNCTIONS.items():
        module = handler.split(".")[0]
        assert (build / function / f"{module}.py").is_file(), function
        assert (build / function / f"{module}.py").read_bytes() == (ROOT / code_uri / f"{module}.py").read_bytes()
    layer = build / "SharedLayer" / "python"
    assert (layer / "async_pipeline" / "__init__.py").is_file()
    assert (layer / "aws_lambda_powertools" / "__init__.py").is_file()
    pin = re.search(r"aws-lambda-powertools(?:\[[a-z,]+\])?==([0-9.]+)", LAYER_REQUIREMENTS.read_text())
    assert pin
    assert (layer / f"aws_lambda_powertools-{pin.group(1)}.dist-info").is_dir()
    # Compiled dependencies must be built for the functions' architecture.
    for extension in layer.rglob("*.so"):
        assert "x86_64" not in extension.name, extension
