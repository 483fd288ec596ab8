"""Ports for local stacks side by side: free, below the ephemeral range, consecutive when asked."""

from __future__ import annotations

import socket

from asyncinfer.local import ports


def test_ports_are_free_and_below_the_ephemeral_range() -> None:
    low, _ = ports._ephemeral_range()
    found = ports.free_ports(4)
    assert len(set(found)) == 4
    assert all(ports._LOWEST <= port < low for port in found)
    for port in found:
        with socket.socket() as server:
            server.bind(("127.0.0.1", port))  # would raise if it were taken


def test_a_block_is_consecutive() -> None:
    base, *rest = ports.free_ports(4, consecutive=True)
    assert rest == [base + 1, base + 2, base + 3]


def test_the_stack_layout_counts_up_from_the_base_port() -> None:
    layout = ports.StackPorts.from_base(5000)
    assert (layout.aws, layout.sagemaker, layout.model, layout.lambda_api) == (5000, 5001, 5002, 5003)
    assert ports.StackPorts.from_base().aws == ports.DEFAULT_BASE_PORT


def test_free_layouts_are_four_distinct_ports() -> None:
    layout = ports.StackPorts.free()
    assert len({layout.aws, layout.sagemaker, layout.model, layout.lambda_api}) == 4
