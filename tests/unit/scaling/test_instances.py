"""Instances start and stop with delays; scale-in cancels starting instances before stopping running ones."""

from __future__ import annotations

from asyncinfer.local.endpoint.instances import InstanceFleet


def test_scale_out_from_zero_waits_for_start_up() -> None:
    fleet = InstanceFleet(startup_seconds=120, stop_seconds=30)
    fleet.set_desired(2, now=0)
    assert (fleet.desired, fleet.starting_count, fleet.running_count) == (2, 2, 0)
    assert fleet.first_ready_at() == 120
    assert not fleet.advance(119)
    assert fleet.advance(120)
    assert (fleet.running_count, fleet.starting_count) == (2, 0)


def test_scale_in_stops_after_the_stop_time() -> None:
    fleet = InstanceFleet.running(2, now=0, startup_seconds=120, stop_seconds=30)
    fleet.set_desired(0, now=10)
    assert (fleet.desired, fleet.running_count, fleet.stopping_count) == (0, 0, 2)
    assert fleet.next_change() == 40
    fleet.advance(40)
    assert fleet.instances == []


def test_scale_in_cancels_starting_instances_first() -> None:
    fleet = InstanceFleet.running(1, now=0, startup_seconds=120, stop_seconds=30)
    fleet.set_desired(3, now=0)
    fleet.set_desired(1, now=60)
    assert (fleet.running_count, fleet.starting_count, fleet.stopping_count) == (1, 0, 0)


def test_scale_out_while_stopping_starts_new_instances() -> None:
    fleet = InstanceFleet.running(1, now=0, startup_seconds=60, stop_seconds=30)
    fleet.set_desired(0, now=0)
    fleet.set_desired(1, now=10)  # the stopping one is not brought back: a new one starts
    assert (fleet.stopping_count, fleet.starting_count) == (1, 1)
    fleet.advance(70)
    assert (fleet.running_count, fleet.stopping_count) == (1, 0)
