"""The template, read and transformed once for all the template tests."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.template.support import load_template, sam_transform


@pytest.fixture(scope="session")
def raw() -> dict[str, Any]:
    return load_template()


@pytest.fixture(scope="session")
def cfn(raw: dict[str, Any]) -> dict[str, Any]:
    return sam_transform(raw)


@pytest.fixture(scope="session")
def resources(cfn: dict[str, Any]) -> dict[str, Any]:
    resources_: dict[str, Any] = cfn["Resources"]
    return resources_
