"""The demo model's artifact, its Booster and a model server on it: made once for all the model tests."""

from __future__ import annotations

import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import xgboost as xgb

from asyncinfer.model import demo
from asyncinfer.model.server import ModelServer, start_model_server


@pytest.fixture(scope="session")
def artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return demo.build_model_artifact(tmp_path_factory.mktemp("artifact"))


@pytest.fixture(scope="session")
def booster(artifact: Path) -> xgb.Booster:
    with tarfile.open(artifact, "r:gz") as tar:
        member = tar.extractfile(demo.MODEL_FILENAME)
        assert member is not None
        data = member.read()
    loaded = xgb.Booster()
    loaded.load_model(bytearray(data))
    return loaded


@pytest.fixture(scope="session")
def server(artifact: Path) -> Iterator[ModelServer]:
    with start_model_server(artifact, port=0) as running:
        yield running
