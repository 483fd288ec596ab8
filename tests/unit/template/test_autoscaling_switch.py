"""The AutoScaling parameter: disabled removes everything registered with Application Auto Scaling (AWS refuses an
instance-type change of a registered variant), and updates keep the endpoint's instance count whatever the switch
says, so that switching it changes nothing on the endpoint."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.template.support import Resolver

SWITCHED = ("ScalableTarget", "BacklogTargetTrackingPolicy", "ScaleOutFromZeroPolicy", "HasBacklogWithoutCapacityAlarm")


def test_autoscaling_is_on_by_default_and_switchable(raw: dict[str, Any]) -> None:
    parameter = raw["Parameters"]["AutoScaling"]
    assert (parameter["Default"], parameter["AllowedValues"]) == ("enabled", ["enabled", "disabled"])


@pytest.mark.parametrize(("value", "enabled"), [("enabled", True), ("disabled", False)])
def test_disabled_removes_the_scalable_target_its_policies_and_their_alarm(
    raw: dict[str, Any], resources: dict[str, Any], value: str, enabled: bool
) -> None:
    resolver = Resolver(raw, AutoScaling=value)
    for logical in SWITCHED:
        assert resources[logical]["Condition"] == "AutoScalingEnabled"
        assert resolver.condition("AutoScalingEnabled") is enabled
    # Nothing that always exists refers to them.
    for logical, resource in resources.items():
        if logical not in SWITCHED and "Condition" not in resource:
            text = str(resource)
            assert not any(f"'{name}'" in text for name in SWITCHED), logical


def test_updates_keep_the_instance_count(resources: dict[str, Any]) -> None:
    endpoint = resources["Endpoint"]["Properties"]
    assert (
        endpoint["RetainAllVariantProperties"] is True
    )  # a constant: AutoScaling's value changes no endpoint property
    assert "ExcludeRetainedVariantProperties" not in endpoint
