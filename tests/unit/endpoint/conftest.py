"""Fixtures of the endpoint emulator's tests. The moto server, the fake container and the bare emulator are
started once for the whole package (every test makes endpoints of its own, with unique names)."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from moto.server import ThreadedMotoServer

from asyncinfer.local.endpoint.emulator import AsyncEndpointEmulator
from tests.unit.endpoint.world import BUCKET, REGION, FakeClock, FakeContainer, World


@pytest.fixture(scope="package")
def moto_url() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    boto3.client("s3", endpoint_url=url, region_name=REGION).create_bucket(Bucket=BUCKET)
    yield url
    server.stop()


@pytest.fixture(scope="package")
def container() -> Iterator[FakeContainer]:
    fake = FakeContainer()
    yield fake
    fake.stop()


@pytest.fixture
def world(moto_url: str, container: FakeContainer, session: boto3.session.Session) -> World:
    container.reset()
    return World(moto_url, container, session)


@pytest.fixture(scope="package")
def session() -> boto3.session.Session:
    # One session for every emulator of the package: clients then share the loaded service models.
    return boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def emulator(world: World, clock: FakeClock) -> Iterator[AsyncEndpointEmulator]:
    emu = AsyncEndpointEmulator(world.moto_url, REGION, world.container.url, clock=clock, session=world.session)
    emu.start()
    yield emu
    emu.stop(grace_seconds=0.5)


@pytest.fixture(scope="package")
def bare_emulator(moto_url: str, session: boto3.session.Session) -> Iterator[AsyncEndpointEmulator]:
    with AsyncEndpointEmulator(moto_url, REGION, "http://127.0.0.1:9", session=session) as emu:
        yield emu
