"""The local stack's model containers across an update (local/model_hosting.py), with real model servers."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from asyncinfer.local.endpoint.container import ContainerCall
from asyncinfer.local.endpoint.updates import ModelDeployError
from asyncinfer.local.model_hosting import ExternalContainer, ModelFleet
from asyncinfer.model import demo


def _predict(url: str, rows: bytes) -> bytes:
    reply = ContainerCall(url).invoke(rows, {"Content-Type": "text/csv", "Accept": "text/csv"}, 30.0)
    assert reply.status == 200, reply.body
    return reply.body


def test_a_new_model_serves_after_activation_and_the_old_container_finishes_first(tmp_path: Path) -> None:
    first = demo.build_model_artifact(tmp_path / "a.tar.gz")
    second = demo.build_model_artifact(tmp_path / "b.tar.gz", booster=demo.train_demo_model(seed=3, base_score=0.9))
    moved: list[tuple[str, str]] = []
    fleet = ModelFleet(None, latency_seconds=1.0, on_switch=lambda e, u: moved.append((e, u)))  # type: ignore[arg-type]
    try:
        old_url = fleet.start("ep", str(first), 0)
        rows = demo.rows_to_csv(demo.make_input_rows(2, seed=1))
        before = _predict(old_url, rows)
        fleet.prepare("ep", str(second))
        assert fleet.url("ep") == old_url, "nothing goes to the new container before the switch"
        in_flight: list[bytes] = []
        call = threading.Thread(target=lambda: in_flight.append(_predict(old_url, rows)))
        call.start()  # sent to the old container just before the switch
        fleet.activate("ep")
        new_url = fleet.url("ep")
        assert new_url != old_url and moved == [("ep", new_url)]
        assert _predict(new_url, rows) != before
        call.join(10)
        assert in_flight == [before], "the retired container answered what it had in flight"
    finally:
        fleet.stop()


def test_a_model_that_does_not_load_is_refused_and_the_old_one_keeps_serving(tmp_path: Path) -> None:
    fleet = ModelFleet(None)  # type: ignore[arg-type]
    broken = tmp_path / "broken.tar.gz"
    broken.write_bytes(b"not a tar")
    try:
        url = fleet.start("ep", str(demo.build_model_artifact(tmp_path / "a.tar.gz")), 0)
        with pytest.raises(ModelDeployError, match="cannot be loaded"):
            fleet.prepare("ep", str(broken))
        fleet.discard("ep")
        fleet.activate("ep")  # nothing prepared: nothing changes
        assert fleet.url("ep") == url
        _predict(url, demo.rows_to_csv(demo.make_input_rows(1)))
    finally:
        fleet.stop()


def test_a_users_own_container_cannot_be_given_another_model() -> None:
    hosting = ExternalContainer("http://127.0.0.1:9999", "s3://m/a/model.tar.gz")
    hosting.prepare("ep", "s3://m/a/model.tar.gz")  # a config change that keeps the model is fine
    with pytest.raises(ModelDeployError, match="cannot give another model"):
        hosting.prepare("ep", "s3://m/b/model.tar.gz")
