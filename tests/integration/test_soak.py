"""The pipeline's promise under every fault at once: 150 files through the local stack, then the soak's audit.

Same code as ``asyncinfer soak --files 150 --faults all --seed 1060959`` (the CLI only adds the table), at the
catalogue's default rates. Seed 1060959 is one whose draws make every fault of the catalogue strike within 150 files
(the rarer ones, an endpoint outage or a TTL expiry, strike about once per 300-2000 files otherwise), so that this
test exercises every path; the draws are per fault and in sequence, so the same faults strike whatever the thread
timing (which file they hit may differ). Each fault's first hit is within the first 30% of its expected
opportunities, and the one endpoint outage (30-45 s, the bulk of the wall time) is drawn about half way through,
with files in flight on both sides of it. (It was 300 files with seed 3573: the same proof, twice the files; the
seed search is described in docs/reliability.md.)
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from asyncinfer import soak
from asyncinfer.faults import CATALOGUE, FaultPlan
from tests.support import ROOT

SEED = 1060959
FILES = 150


@pytest.mark.slow
def test_150_files_with_every_fault_on_each_end_once(tmp_path: Path) -> None:
    settings = soak.SoakSettings(files=FILES, faults=FaultPlan.parse("all", SEED), seed=SEED)
    result = soak.run(settings, root=ROOT, state_dir=tmp_path)
    (tmp_path / soak.REPORT_FILE).write_text(json.dumps(result.to_json(), indent=2, ensure_ascii=False))
    summary = json.dumps({k: v for k, v in result.to_json().items() if k != "examples"}, indent=1)

    assert result.violations == [], summary
    # input-changed overwrites some inputs while their requests wait: each overwrite is a new version, a file of
    # its own. Every completed output is the model's prediction for its own version's bytes (wrong inputs: 0).
    assert result.uploaded == FILES
    assert result.inputs == FILES + result.fault_counts.get("input-changed:overwrites", 0), summary
    assert result.lost == 0 and result.duplicates == 0 and result.contradictions == 0 and result.dangling == 0
    assert result.wrong_inputs == 0 and result.outputs_checked == result.completed, summary
    # Every completed output is at the name derived from its input, every uploaded file's event has its metadata;
    # and since outputs are named after the inference id, a repeated request leaves no orphan output.
    assert result.misnamed == 0 and result.names_checked == result.completed, summary
    assert result.without_metadata == 0 and result.metadata_checked > 0.9 * FILES, summary
    assert result.orphan_outputs == 0, summary
    # Every input is accounted for: a terminal job with its one event, or a dead letter that says why.
    assert result.accounted == result.inputs, summary
    assert result.result_events == result.accounted - result.dead_lettered_inputs  # one each, none twice
    for reason in result.dead_letter_reasons:
        assert reason.strip(), "every dead letter carries its reason"
    # The model rejects some files whatever the faults: they fail with the model's reason, never complete.
    assert not any(k.startswith("FAILED → COMPLETED") for k in result.unexpected_outcomes), summary

    counts = result.fault_counts
    silent = [name for name in CATALOGUE if not counts.get(name) and not counts.get(f"{name}:episodes")]
    assert silent == [], f"faults that never struck: {silent}\n{summary}"
    assert counts["endpoint:container_refused"] > 0, "calls to a dead container are held, not failed"
