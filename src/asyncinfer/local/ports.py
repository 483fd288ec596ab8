"""The local stack's port layout, and free loopback ports for stacks started side by side (the tests, the soak).

They are picked outside the kernel's ephemeral range: a port found free inside it can become the source port of
any outgoing connection before the server binds it (seen in a CI-like run: a stack's PORT+1 was taken that way by
one of the suite's own HTTP clients between the probe and the bind).
"""

from __future__ import annotations

import random
import socket
from dataclasses import dataclass
from pathlib import Path

_EPHEMERAL = Path("/proc/sys/net/ipv4/ip_local_port_range")
_LOWEST = 10000  # above the registered services people commonly run locally
DEFAULT_BASE_PORT = 4599  # `asyncinfer local up --port`'s default


@dataclass(frozen=True, slots=True)
class StackPorts:
    """The four loopback ports of one local stack: the AWS APIs (moto), sagemaker-runtime, the model container and
    the Lambda API. ``asyncinfer local up --port PORT`` takes PORT, PORT+1, PORT+2 and PORT+3 in that order."""

    aws: int
    sagemaker: int
    model: int
    lambda_api: int

    @classmethod
    def from_base(cls, base: int = DEFAULT_BASE_PORT) -> StackPorts:
        return cls(base, base + 1, base + 2, base + 3)

    @classmethod
    def free(cls, host: str = "127.0.0.1") -> StackPorts:
        """Four ports nobody listens on now (not necessarily consecutive)."""
        aws, sagemaker, model, lambda_api = free_ports(4, host=host)
        return cls(aws, sagemaker, model, lambda_api)


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = (int(part) for part in _EPHEMERAL.read_text(encoding="ascii").split())
    except (OSError, ValueError):
        return 49152, 65535  # the IANA range, which macOS and Windows use
    return low, high


def _bindable(port: int, host: str) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def free_ports(count: int, *, consecutive: bool = False, host: str = "127.0.0.1") -> list[int]:
    """``count`` ports nobody listens on now, below the ephemeral range; ``consecutive``: PORT, PORT+1, …"""
    low, _ = _ephemeral_range()
    top = low - count if low - count > _LOWEST + 1000 else 65535 - count  # no room below: above the range
    bottom = _LOWEST if top < low else _ephemeral_range()[1] + 1
    chooser = random.SystemRandom()
    for _ in range(1000):
        if consecutive:
            base = chooser.randint(bottom, top)
            ports = list(range(base, base + count))
        else:
            ports = chooser.sample(range(bottom, top + count), count)
        if all(_bindable(port, host) for port in ports):
            return ports
    raise OSError(f"no {count} free port(s) found between {bottom} and {top + count}")
