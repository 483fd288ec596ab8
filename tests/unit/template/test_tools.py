"""The tools themselves on the template (slow): cfn-lint, `sam validate --lint`, checkov (its own environment:
CHECKOV, default .venv-checkov/bin/checkov) and `sam build` into a temporary directory."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from bench.cold_start import lambda_environment
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


_CHECK_LISTS = ("passed_checks", "failed_checks", "skipped_checks")


def _checkov_scan(checkov: Path, *paths: Path) -> list[dict[str, Any]]:
    """One checkov run on several files (its start-up, about 10 s of CPU, paid once), as one report per file: the
    checks whose file is that file, and their counts. The files' names must differ (a check names its file)."""
    assert len({path.name for path in paths}) == len(paths), paths
    result = run([checkov, "--framework", "cloudformation", "--skip-download", "--output", "json", "--file", *paths])
    assert result.returncode in {0, 1}, _tool_output(result)
    report = json.loads(result.stdout)
    report = report[0] if isinstance(report, list) else report
    assert report["check_type"] == "cloudformation", _tool_output(result)
    assert report["summary"]["parsing_errors"] == 0
    checks = {kind: report["results"][kind] for kind in _CHECK_LISTS}
    named = {Path(check["file_abs_path"]).name for kind in _CHECK_LISTS for check in checks[kind]}
    assert named == {path.name for path in paths}, f"checks of unexpected files: {named}"
    scans: list[dict[str, Any]] = []
    for path in paths:
        mine = {kind: [c for c in checks[kind] if Path(c["file_abs_path"]).name == path.name] for kind in _CHECK_LISTS}
        summary = {kind.removesuffix("_checks"): len(found) for kind, found in mine.items()}
        scans.append({"check_type": report["check_type"], "results": mine, "summary": summary})
    return scans


@pytest.fixture(scope="module")
def checkov_reports(
    raw: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> tuple[dict[str, Any], dict[str, Any]]:
    """checkov on the template, and on a copy without its checkov skips (one run for both)."""
    checkov = _checkov()
    unskipped = load_template()
    for resource in unskipped["Resources"].values():
        resource.get("Metadata", {}).pop("checkov", None)
    copy = tmp_path_factory.mktemp("checkov") / "template-without-skips.json"
    copy.write_text(json.dumps(unskipped))
    template_scan, unskipped_scan = _checkov_scan(checkov, TEMPLATE, copy)
    return template_scan, unskipped_scan


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


@pytest.fixture(scope="module")
def sam_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``sam build`` of the template, as ``make build`` runs it (no container), once for the tests below."""
    scratch = tmp_path_factory.mktemp("sam-build")
    build = scratch / "build"
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
            scratch / "cache",
            "--no-cached",
        ],
        env={"PATH": path},
    )
    assert result.returncode == 0, _tool_output(result)
    return build


@pytest.mark.slow
def test_sam_build(sam_build: Path) -> None:
    build = sam_build
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
    extensions = list(layer.rglob("*.so"))
    assert extensions, "wrapt (X-Ray SDK) ships a compiled extension"
    for extension in extensions:
        assert "x86_64" not in extension.name, extension
        assert "aarch64" in extension.name, extension


# Run by python3.13 on the built layer: every module's .pyc as Lambda's python3.13 looks for it, and whether that
# interpreter would use it as it is (its magic number; unchecked-hash, so no check of the source's mtime or hash).
_PYC_AUDIT = """
import importlib.util, json, sys
from pathlib import Path

layer = Path(sys.argv[1])
sources = sorted(layer.rglob("*.py"))
found = {"cache_tag": sys.implementation.cache_tag, "sources": len(sources), "missing": [], "wrong_magic": [],
         "not_unchecked_hash": [], "hash_of_other_source": []}
for source in sources:
    name = str(source.relative_to(layer))
    pyc = Path(importlib.util.cache_from_source(str(source)))
    if not pyc.is_file():
        found["missing"].append(name)
        continue
    header = pyc.read_bytes()[:16]
    if header[:4] != importlib.util.MAGIC_NUMBER:
        found["wrong_magic"].append(name)
    if int.from_bytes(header[4:8], "little") != 0b01:  # bit 0: hash-based; bit 1: check the source
        found["not_unchecked_hash"].append(name)
    elif header[8:16] != importlib.util.source_hash(source.read_bytes()):
        found["hash_of_other_source"].append(name)
print(json.dumps(found))
"""

# A cold start as Lambda runs one, recording every module the import system compiles from source.
_COLD_IMPORT = """
import json, sys
from importlib.machinery import SourceFileLoader

compiled = []
source_to_code = SourceFileLoader.source_to_code

def recording(self, data, path, *args, **kwargs):
    compiled.append(str(path))
    return source_to_code(self, data, path, *args, **kwargs)

SourceFileLoader.source_to_code = recording
sys.path[:0] = {paths!r}
for module in {modules!r}:
    __import__(module)
print(json.dumps({{"compiled": compiled, "modules": sorted(sys.modules)}}))
"""


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}


@pytest.mark.slow
def test_built_layer_is_byte_compiled_for_lambda_python313(sam_build: Path, tmp_path: Path) -> None:
    """Every module of the layer has a .pyc that Lambda's python3.13 uses as it is: nothing is compiled at a cold
    start, even after the zip has changed every source's modification time, and nothing is written."""
    python = _python313_dir() / "python3.13"
    layer = sam_build / "SharedLayer" / "python"
    audit = run([python, "-S", "-I", "-c", _PYC_AUDIT, layer])
    assert audit.returncode == 0, _tool_output(audit)
    found = json.loads(audit.stdout)
    assert found["cache_tag"] == "cpython-313"
    assert found["sources"] > 500, "boto3, botocore, Powertools, the X-Ray SDK and async_pipeline"
    for problem in ("missing", "wrong_magic", "not_unchecked_hash", "hash_of_other_source"):
        assert found[problem] == [], f"{problem}: {found[problem][:10]}"

    # Lambda unpacks the zip with the zip's timestamps: a timestamp-based .pyc would be stale, a hash-checked one
    # recompiled from the read-only /opt at every cold start.
    copy = tmp_path / "opt" / "python"
    shutil.copytree(layer, copy)
    for source in copy.rglob("*.py"):
        os.utime(source, ns=(946_684_800 * 10**9, 946_684_800 * 10**9))
    before = _snapshot(copy)
    modules = [handler.split(".")[0] for _, handler in FUNCTIONS.values()]
    code_dirs = [str(sam_build / function) for function in FUNCTIONS]
    # Tracing on, as deployed: Powertools' Tracer then imports the X-Ray SDK (and wrapt) from the layer as well.
    env = lambda_environment(modules[0], code_dirs[0], tracing=True)
    child = _COLD_IMPORT.format(paths=[*code_dirs, str(copy)], modules=modules)
    # No -B: were a .pyc stale or missing, the interpreter would compile the module and write a new one. The
    # environment is Lambda's alone (not the tests', which turn tracing off).
    done = subprocess.run(
        [str(python), "-S", "-I", "-c", child],
        env=env,
        cwd=code_dirs[0],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, _tool_output(done)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert {"boto3", "botocore", "aws_lambda_powertools", "aws_xray_sdk.core", "async_pipeline"} <= set(
        result["modules"]
    )
    assert [path for path in result["compiled"] if path.startswith(str(copy))] == []
    assert _snapshot(copy) == before, "importing the layer wrote or changed files"
