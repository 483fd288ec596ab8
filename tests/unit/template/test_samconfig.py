"""samconfig.toml: one stack per environment, with valid parameter overrides."""

from __future__ import annotations

import re
import tomllib
from typing import Any

import pytest

from tests.unit.template.support import (
    SAMCONFIG,
)


# ----------------------------------------------------------------------------------------------------------- samconfig
@pytest.mark.parametrize("environment", ["default", "dev", "prod"])
def test_samconfig_environment(raw: dict[str, Any], environment: str) -> None:
    config = tomllib.loads(SAMCONFIG.read_text())
    section = config[environment]
    stack_name = section["global"]["parameters"]["stack_name"]
    # The stack name is the endpoint's name.
    assert re.fullmatch(r"[a-zA-Z][-a-zA-Z0-9]{0,62}", stack_name)
    assert section["validate"]["parameters"]["lint"] is True
    deploy = section["deploy"]["parameters"]
    assert "CAPABILITY_IAM" in deploy["capabilities"].split()
    assert deploy["resolve_s3"] is True
    assert isinstance(deploy["confirm_changeset"], bool)
    overrides = dict(pair.split("=", 1) for pair in deploy["parameter_overrides"].split())
    assert overrides
    for name, value in overrides.items():
        spec = raw["Parameters"][name]
        if "AllowedValues" in spec:
            assert value in [str(v) for v in spec["AllowedValues"]], (name, value)
        if "MinValue" in spec:
            assert float(value) >= float(spec["MinValue"]), (name, value)
        if "MaxValue" in spec:
            assert float(value) <= float(spec["MaxValue"]), (name, value)
    minimum = int(overrides.get("MinInstances", raw["Parameters"]["MinInstances"]["Default"]))
    assert minimum <= int(overrides.get("MaxInstances", raw["Parameters"]["MaxInstances"]["Default"]))


def test_samconfig_prod_asks_before_changing() -> None:
    config = tomllib.loads(SAMCONFIG.read_text())
    assert config["prod"]["deploy"]["parameters"]["confirm_changeset"] is True
    names = {config[e]["global"]["parameters"]["stack_name"] for e in ("default", "dev", "prod")}
    assert len(names) == 3, "each environment is its own stack"
