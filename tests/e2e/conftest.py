"""The e2e suite knows only the stack's outputs. It runs against the local stack, or, when AWS_SAM_STACK_NAME is
set, against that deployed stack (AWS credentials and region from the environment), unchanged."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from asyncinfer import target
from tests.support import ResultCollector, local_stack


# Package scope: the stack stops when the e2e tests are done (moto state is process-wide: one stack at a time).
@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[target.Target]:
    name = os.environ.get("AWS_SAM_STACK_NAME")
    if name:
        yield target.deployed(name, os.environ.get("AWS_REGION"))
        return
    state_dir: Path = tmp_path_factory.mktemp("local-stack")
    with local_stack(state_dir):
        yield target.local(state_dir)


@pytest.fixture(scope="package")
def results(stack: target.Target) -> Iterator[ResultCollector]:
    collector = ResultCollector(stack)
    yield collector
    collector.stop()
