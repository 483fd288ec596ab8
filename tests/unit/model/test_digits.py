"""The digits demo's artifact through the script-mode stand-in, called as the scikit-learn container calls it
(``model_fn`` on the model directory, ``image/png`` and ``application/json`` bodies, the Accept the pipeline sends),
and the framework limits on a script-mode server."""

from __future__ import annotations

import importlib.util
import json
import tarfile
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from asyncinfer.model import digits
from asyncinfer.model.framework_limits import FrameworkLimits
from asyncinfer.model.server import ModelServer, start_model_server
from tests.unit.model.support import invoke_http


@pytest.fixture(scope="module")
def artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return digits.build_artifact(tmp_path_factory.mktemp("digits") / "model.tar.gz")


@pytest.fixture(scope="module")
def server(artifact: Path) -> Iterator[ModelServer]:
    with start_model_server(artifact, container="script") as running:
        yield running


@pytest.fixture(scope="module")
def script(artifact: Path, tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    unpacked = tmp_path_factory.mktemp("unpacked")
    with tarfile.open(artifact, "r:gz") as tar:
        assert sorted(tar.getnames()) == ["code/inference.py", digits.MODEL_FILE]
        tar.extractall(unpacked, filter="data")
    spec = importlib.util.spec_from_file_location("digits_inference", unpacked / "code" / "inference.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_pngs_come_back_as_the_digits_drawn(server: ModelServer) -> None:
    samples = digits.held_out_pngs(20)
    answers = [invoke_http(server.url, png, "image/png", accept="application/json") for _, png in samples]
    assert all(a.status == 200 and a.headers["Content-Type"] == "application/json" for a in answers)
    predicted = [json.loads(a.body)["digit"] for a in answers]
    assert sum(p == d for p, (d, _) in zip(predicted, samples, strict=True)) >= 17  # ~91% on held-out images


def test_json_pixels_and_csv_answers(server: ModelServer) -> None:
    digit, png = digits.held_out_pngs(2)[1]
    rows = json.dumps([[0.0] * 64, [16.0] * 64]).encode()
    reply = invoke_http(server.url, rows, "application/json", accept="text/csv")
    assert reply.status == 200 and reply.headers["Content-Type"] == "text/csv"
    assert len(reply.body.decode().splitlines()) == 2
    any_accept = invoke_http(server.url, png, "image/png", accept="*/*")
    assert json.loads(any_accept.body)["digit"] == digit  # */* → SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT or JSON


@pytest.mark.parametrize(
    ("body", "content_type", "accept", "message"),
    [
        (b"not an image", "image/png", "application/json", b"the body is not a PNG image"),
        (b"", "image/png", "application/json", b"the body is not a PNG image"),
        (b"1,2,3", "text/csv", "application/json", b"unsupported content type 'text/csv'"),
        (b"[1, 2]", "application/json", "application/json", b"expected 64 pixel values per image"),
    ],
)
def test_bad_inputs_are_the_models_500_with_its_message(
    server: ModelServer, body: bytes, content_type: str, accept: str, message: bytes
) -> None:
    reply = invoke_http(server.url, body, content_type, accept=accept)
    assert reply.status == 500 and reply.body.startswith(message) and b"Traceback" in reply.body


def test_the_plain_png_decoder_matches_pillow(script: ModuleType) -> None:
    # Without Pillow in the image the script decodes PNG itself (the endpoint has no network for requirements.txt).
    for _, png in digits.held_out_pngs(5):
        assert np.array_equal(script._decode_png_plain(png), script.decode_png(png))


def test_any_size_and_light_background_give_the_data_sets_features(script: ModuleType) -> None:
    pixels = np.arange(64, dtype=np.float64).reshape(8, 8) % 17
    dark_ink = 255 - np.kron(pixels * 255 / 16, np.ones((4, 4)))
    assert np.allclose(script.to_features(dark_ink), pixels.reshape(1, 64))
    with pytest.raises(ValueError, match="at least 8x8"):
        script.to_features(np.zeros((4, 4)))


def test_framework_limits_apply_to_the_script_server(tmp_path: Path) -> None:
    code = tmp_path / "code"
    code.mkdir()
    (code / "inference.py").write_text(
        textwrap.dedent("""
            import time
            def model_fn(model_dir):
                return None
            def transform_fn(model, body, content_type, accept):
                time.sleep(30 if body == b"slow" else 0)
                return b"x" * 200, "application/octet-stream"
        """),
        encoding="utf-8",
    )
    limits = FrameworkLimits("TorchServe", max_request_bytes=100, max_response_bytes=150, response_timeout_seconds=1)
    with start_model_server(tmp_path, container="script", framework_limits=limits) as running:
        assert invoke_http(running.url, b"y" * 101, "application/x-raw").status == 413
        too_big = invoke_http(running.url, b"ok", "application/x-raw")
        assert too_big.status == 500 and json.loads(too_big.body)["message"] == "Worker died."
        slow = invoke_http(running.url, b"slow", "application/x-raw")  # killed after the 1 s timeout
        assert slow.status == 500 and json.loads(slow.body)["message"] == "Worker died."


def test_preflight_passes_against_the_script_mode_artifact(server: ModelServer) -> None:
    from asyncinfer.preflight import Preflight, Settings

    settings = Settings(
        max_payload_bytes=1_000_000,
        invocation_timeout_seconds=30,
        content_types=("image/png", "application/json"),
        accept="application/json",
        samples={"image/png": digits.held_out_pngs(1)[0][1], "application/json": json.dumps([1.0] * 64).encode()},
    )
    checks = Preflight(server.url, settings).run()
    assert [c.name for c in checks if not c.passed] == [], checks
