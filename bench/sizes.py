"""5. Deployment sizes: each function's artifact and the layer, from ``sam build`` (no container) into a scratch dir.

Reported unzipped (what counts against Lambda's 250 MB for a function plus its layers) and zipped with deflate (what
is uploaded; 50 MB for a direct upload), with the number of files and of ``.pyc`` files (Lambda cannot write
bytecode at run time, so a module shipped without one is compiled at every cold start: the layer's Makefile
compiles every module of the layer; see the cold-start section). The figures are those of the build as it is.
"""

from __future__ import annotations

import glob
import io
import os
import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

from bench.common import LOGICAL_IDS, ROOT, Section

ARTIFACTS = (*LOGICAL_IDS.values(), "SharedLayer")


def python313_dir() -> str | None:
    """A directory with a working ``python3.13`` for ``sam build``: pyenv's, PATH's, or this interpreter's (the
    order the Makefile looks in)."""
    root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    candidates = sorted(glob.glob(f"{root}/versions/3.13*/bin/python3.13"), reverse=True)
    found = shutil.which("python3.13")
    for path in [*candidates, *([found] if found else [])]:
        if subprocess.run([path, "-c", ""], check=False, capture_output=True).returncode == 0:
            return str(Path(path).parent)
    if sys.version_info[:2] == (3, 13):
        return str(Path(sys.executable).parent)
    return None


def _measure(path: Path) -> Section:
    files = [p for p in path.rglob("*") if p.is_file()]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for file in files:
            archive.write(file, file.relative_to(path))
    return {
        "unzipped_bytes": sum(f.stat().st_size for f in files),
        "zipped_bytes": buffer.tell(),
        "files": len(files),
        "pyc_files": sum(1 for f in files if f.suffix == ".pyc"),
    }


def build(scratch: Path, log: Callable[[str], None]) -> tuple[Path | None, str | None]:
    """``sam build`` into ``scratch``; the build directory, or None and why not."""
    sam = Path(sys.executable).parent / "sam"
    python_dir = python313_dir()
    if not sam.exists():
        return None, f"{sam} not found (make venv installs the SAM CLI)"
    if python_dir is None:
        return None, "no python3.13 found for sam build (pyenv 3.13 or python3.13 on PATH)"
    build_dir = scratch / "build"
    env = {
        **os.environ,
        "PATH": f"{python_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "SAM_CLI_TELEMETRY": "0",
        "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
    }
    command = [
        str(sam),
        "build",
        "--template-file",
        str(ROOT / "template.yaml"),
        "--build-dir",
        str(build_dir),
        "--cache-dir",
        str(scratch / "cache"),
        "--no-cached",
    ]
    log("sizes: sam build")
    started = time.time()
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return None, f"sam build failed: {(done.stderr or done.stdout)[-1500:]}"
    log(f"sizes: sam build took {time.time() - started:.0f} s")
    return build_dir, None


def run(build_dir: Path | None, skipped: str | None) -> Section:
    if build_dir is None:
        return {"skipped": skipped}
    return {"artifacts": {name: _measure(build_dir / name) for name in ARTIFACTS}}


def summary_rows(section: Section) -> list[list[str]]:
    if "skipped" in section:
        return [["(skipped)", str(section["skipped"]), "", "", ""]]
    rows = []
    for name, figures in section["artifacts"].items():
        rows.append(
            [
                name,
                f"{figures['unzipped_bytes'] / 1e6:.2f} MB"
                if figures["unzipped_bytes"] > 1e5
                else f"{figures['unzipped_bytes'] / 1e3:.1f} kB",
                f"{figures['zipped_bytes'] / 1e6:.2f} MB"
                if figures["zipped_bytes"] > 1e5
                else f"{figures['zipped_bytes'] / 1e3:.1f} kB",
                str(figures["files"]),
                str(figures["pyc_files"]),
            ]
        )
    return rows
