"""SageMaker's side of UpdateEndpoint (updates.py): the new model first, then the switch, then the outcome."""

from __future__ import annotations

from dataclasses import replace

import pytest

from asyncinfer.local.endpoint.settings import EndpointSettings
from asyncinfer.local.endpoint.updates import ModelDeployError, UpdateWatcher

SETTINGS = EndpointSettings(
    name="ep",
    account="123456789012",
    config_name="new-config",
    variant_name="AllTraffic",
    output_path="s3://out/output/",
    failure_path="s3://out/failure/",
    success_topic=None,
    error_topic=None,
    include_response_in=frozenset(),
    max_concurrent_invocations_per_instance=4,
    initial_instance_count=1,
    model_data_url="s3://models/new/model.tar.gz",
    desired_instance_count=0,
)


class ControlPlane:
    def __init__(
        self, status: str, settings: EndpointSettings | Exception = SETTINGS, *, capacity_change: bool = False
    ) -> None:
        self._status, self._settings = status, settings
        self._capacity_change = capacity_change  # Updating for UpdateEndpointWeightsAndCapacities, not UpdateEndpoint
        self.pending_reads = 0

    def status(self, name: str) -> tuple[str, str]:
        return self._status, "old-config"

    def update_in_progress(self, name: str) -> bool:
        return self._status == "Updating" and not self._capacity_change

    def describe(self, name: str, *, pending: bool = False) -> EndpointSettings:
        assert pending, "the watcher reads the config of the update, not the current one"
        self.pending_reads += 1
        if isinstance(self._settings, Exception):
            raise self._settings
        return self._settings


class Emulator:
    def __init__(self) -> None:
        self.updated: list[EndpointSettings] = []

    def endpoint_names(self) -> list[str]:
        return ["ep"]

    def update_endpoint(self, name: str, settings: EndpointSettings | None = None) -> EndpointSettings:
        assert settings is not None
        self.updated.append(settings)
        return settings


class Hosting:
    def __init__(self, error: str | None = None) -> None:
        self.calls: list[tuple[str, str | None]] = []
        self._error = error

    def prepare(self, endpoint: str, model_data_url: str | None) -> None:
        self.calls.append(("prepare", model_data_url))
        if self._error:
            raise ModelDeployError(self._error)

    def activate(self, endpoint: str) -> None:
        self.calls.append(("activate", None))

    def discard(self, endpoint: str) -> None:
        self.calls.append(("discard", None))


def _watcher(control: ControlPlane, hosting: Hosting, emulator: Emulator) -> tuple[UpdateWatcher, list[object]]:
    finished: list[object] = []
    watcher = UpdateWatcher(emulator, control, hosting, lambda name, reason: finished.append((name, reason)))  # type: ignore[arg-type]
    return watcher, finished


def test_an_update_starts_the_new_model_before_switching_and_ends_in_service() -> None:
    control, hosting, emulator = ControlPlane("Updating"), Hosting(), Emulator()
    watcher, finished = _watcher(control, hosting, emulator)
    assert watcher.check("ep")
    assert hosting.calls == [("prepare", "s3://models/new/model.tar.gz"), ("activate", None)]
    assert emulator.updated == [SETTINGS]  # the new config's settings, instance count included
    assert finished == [("ep", None)]


def test_a_model_that_does_not_start_ends_the_update_with_its_reason_and_switches_nothing() -> None:
    control, hosting, emulator = ControlPlane("Updating"), Hosting("no model file in the artifact"), Emulator()
    watcher, finished = _watcher(control, hosting, emulator)
    assert watcher.check("ep")
    assert hosting.calls == [("prepare", "s3://models/new/model.tar.gz"), ("discard", None)]
    assert emulator.updated == []
    [(name, reason)] = finished
    assert name == "ep" and "new-config" in str(reason) and "no model file in the artifact" in str(reason)


@pytest.mark.parametrize("status", ["InService", "Creating", "Failed"])
def test_an_endpoint_not_updating_is_left_alone(status: str) -> None:
    control, hosting, emulator = ControlPlane(status), Hosting(), Emulator()
    watcher, finished = _watcher(control, hosting, emulator)
    assert not watcher.check("ep")
    assert (hosting.calls, emulator.updated, finished, control.pending_reads) == ([], [], [], 0)


def test_updating_for_autoscaling_s_capacity_change_starts_no_model() -> None:
    control, hosting, emulator = ControlPlane("Updating", capacity_change=True), Hosting(), Emulator()
    watcher, finished = _watcher(control, hosting, emulator)
    assert not watcher.check("ep")
    assert (hosting.calls, emulator.updated, finished, control.pending_reads) == ([], [], [], 0)


def test_a_config_that_cannot_be_read_fails_the_update_instead_of_retrying_forever() -> None:
    control = ControlPlane("Updating", LookupError("Could not find endpoint configuration"))
    hosting, emulator = Hosting(), Emulator()
    watcher, finished = _watcher(control, hosting, emulator)
    assert watcher.check("ep")
    [(_, reason)] = finished
    assert "Could not find endpoint configuration" in str(reason)
    assert hosting.calls == [] and emulator.updated == []


def test_a_config_keeping_the_model_still_goes_through_the_same_steps() -> None:
    same = replace(SETTINGS, model_data_url="s3://models/old/model.tar.gz")
    control, hosting, emulator = ControlPlane("Updating", same), Hosting(), Emulator()
    watcher, finished = _watcher(control, hosting, emulator)
    assert watcher.check("ep")
    assert hosting.calls[0] == ("prepare", "s3://models/old/model.tar.gz") and finished == [("ep", None)]
