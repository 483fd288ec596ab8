"""The script-mode stand-in: the inference toolkit's dispatch (present and missing handler functions, transform_fn,
context arguments), its default JSON/CSV/NPY handlers, user-code errors as the model's error, requirements.txt
reported, and the worker process behind the container's HTTP contract.

Most tests call script_mode.py's functions in-process on scripts written to a temporary model directory; the
server tests start one worker process each (about half a second)."""

from __future__ import annotations

import io
import json
import textwrap
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from asyncinfer.model import default_handlers, script_mode
from asyncinfer.model.container_images import stand_in_for
from asyncinfer.model.script_mode import LoadedScript, ScriptLoadError, load_script, requirements
from asyncinfer.model.server import ModelServer, start_model_server
from tests.unit.model.support import invoke_http, request


def model_dir(tmp_path: Path, script: str, files: dict[str, str] | None = None) -> Path:
    code = tmp_path / "code"
    code.mkdir(parents=True)
    (code / "inference.py").write_text(textwrap.dedent(script), encoding="utf-8")
    for name, text in (files or {}).items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    return tmp_path


DOUBLER = """
    import numpy as np
    def model_fn(model_dir):
        return 2.0
    def predict_fn(data, model):
        return np.asarray(data) * model
"""


def loaded(tmp_path: Path, script: str) -> LoadedScript:
    return load_script(model_dir(tmp_path, script))


# --- dispatch ------------------------------------------------------------------------------------------------


def test_missing_input_and_output_fn_use_the_default_json_handlers(tmp_path: Path) -> None:
    reply = loaded(tmp_path, DOUBLER).transform(b"[[1, 2], [3, 4]]", "application/json", None, "application/json")
    assert reply == (200, b"[[2.0, 4.0], [6.0, 8.0]]", "application/json")


def test_csv_in_and_out_through_the_defaults(tmp_path: Path) -> None:
    reply = loaded(tmp_path, DOUBLER).transform(b"1,2\n3,4\n", "text/csv", "text/csv", "application/json")
    assert reply.status == 200 and reply.content_type == "text/csv"
    assert reply.body == b"2.0,4.0\n6.0,8.0\n"


def test_npy_in_and_out_through_the_defaults(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    np.save(buffer, np.arange(3.0))
    reply = loaded(tmp_path, DOUBLER).transform(buffer.getvalue(), "application/x-npy", "application/x-npy", "x")
    assert reply.status == 200
    assert np.load(io.BytesIO(reply.body)).tolist() == [0.0, 2.0, 4.0]


def test_no_accept_or_any_means_the_default_accept(tmp_path: Path) -> None:
    script = loaded(tmp_path, DOUBLER)
    for accept in (None, "*/*"):
        reply = script.transform(b"1,2", "text/csv", accept, "text/csv")
        assert reply.content_type == "text/csv" and reply.body == b"2.0\n4.0\n"


def test_user_functions_replace_the_defaults_and_text_types_arrive_as_str(tmp_path: Path) -> None:
    script = """
        def model_fn(model_dir):
            return "m"
        def input_fn(body, content_type):
            return f"{type(body).__name__}:{content_type}"
        def predict_fn(data, model):
            return data + "|" + model
        def output_fn(prediction, accept):
            return prediction + "|" + accept, "text/plain"
    """
    script_ = loaded(tmp_path, script)
    assert script_.transform(b"{}", "application/json", "a/b", "x") == (
        200,
        b"str:application/json|m|a/b",
        "text/plain",
    )
    assert script_.transform(b"\x89PNG", "image/png", "a/b", "x").body == b"bytes:image/png|m|a/b"


def test_transform_fn_with_a_context_argument(tmp_path: Path) -> None:
    script = """
        def model_fn(model_dir, context):
            return context
        def transform_fn(model, body, content_type, accept, context):
            return {"model": model, "context": context, "body": body}
    """
    reply = loaded(tmp_path, script).transform(b"[1]", "text/csv", "application/json", "x")
    assert reply.status == 200 and json.loads(reply.body) == {"model": None, "context": None, "body": "[1]"}


def test_transform_fn_with_input_fn_refuses_to_load(tmp_path: Path) -> None:
    script = DOUBLER + "\n    def transform_fn(model, body, content_type, accept):\n        return body\n"
    with pytest.raises(ScriptLoadError, match="Cannot use transform_fn"):
        loaded(tmp_path, script)


def test_missing_model_fn_fails_the_load(tmp_path: Path) -> None:
    with pytest.raises(ScriptLoadError, match="model_fn failed: NotImplementedError: Please provide a model_fn"):
        loaded(tmp_path, "def predict_fn(data, model):\n    return data\n")


def test_no_inference_script_fails_the_load(tmp_path: Path) -> None:
    with pytest.raises(ScriptLoadError, match=r"no code/inference\.py"):
        load_script(tmp_path)


def test_a_script_that_does_not_import_fails_the_load(tmp_path: Path) -> None:
    with pytest.raises(ScriptLoadError, match=r"importing code/inference\.py failed: ModuleNotFoundError"):
        loaded(tmp_path, "import no_such_package_here\n")


def test_missing_predict_fn_is_the_models_500(tmp_path: Path) -> None:
    reply = loaded(tmp_path, "def model_fn(model_dir):\n    return 1\n").transform(
        b"[1]", "application/json", None, "x"
    )
    assert reply.status == 500 and reply.body.startswith(b"Please provide a predict_fn implementation.\nTraceback")


# --- errors --------------------------------------------------------------------------------------------------


def test_user_code_error_is_500_with_message_then_traceback(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    script = DOUBLER.replace("return np.asarray(data) * model", "raise KeyError('no such feature')")
    reply = loaded(tmp_path, script).transform(b"[1]", "application/json", None, "application/json")
    assert reply.status == 500 and reply.content_type == script_mode.ERROR_CONTENT_TYPE
    message, trace = reply.body.decode().split("\n", 1)
    assert message == "'no such feature'"
    assert trace.startswith("Traceback") and "KeyError: 'no such feature'" in trace
    assert "KeyError: 'no such feature'" in caplog.text  # the container log


def test_an_error_with_a_status_code_answers_that_status(tmp_path: Path) -> None:
    script = """
        class BadInput(Exception):
            def __init__(self):
                self.status_code, self.message, self.phrase = 415, "send image/png", "Unsupported"
        def model_fn(model_dir):
            return 1
        def input_fn(body, content_type):
            raise BadInput()
    """
    reply = loaded(tmp_path, script).transform(b"x", "text/plain", None, "application/json")
    assert reply.status == 415 and reply.body.startswith(b"send image/png\nTraceback")


def test_unsupported_types_in_the_default_handlers_are_500_with_the_toolkits_message(tmp_path: Path) -> None:
    script = loaded(tmp_path, DOUBLER)
    refused_in = script.transform(b"x", "image/png", None, "application/json")
    refused_out = script.transform(b"[1]", "application/json", "text/html", "application/json")
    for reply, named in ((refused_in, b"image/png"), (refused_out, b"text/html")):
        assert reply.status == 500
        assert reply.body.startswith(b"Content type " + named + b" is not supported by this framework.")


def test_default_decoder_refuses_pickled_npy() -> None:
    buffer = io.BytesIO()
    np.save(buffer, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="allow_pickle"):
        default_handlers.decode(buffer.getvalue(), default_handlers.NPY)


# --- requirements.txt, image selection ----------------------------------------------------------------------


def test_requirements_are_listed_not_installed(tmp_path: Path) -> None:
    directory = model_dir(
        tmp_path, DOUBLER, {"code/requirements.txt": "# pins\nno-such-pkg==1.0\n\npillow  # images\n"}
    )
    assert requirements(directory) == ["no-such-pkg==1.0", "pillow"]
    assert requirements(tmp_path / "elsewhere") == []


@pytest.mark.parametrize(
    ("image", "container"),
    [
        ("683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3", "script"),
        ("763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.6.0-cpu-py312", "script"),
        ("763104351884.dkr.ecr.eu-west-1.amazonaws.com/huggingface-pytorch-inference@sha256:" + "a" * 64, "script"),
        ("683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1", "xgboost"),
        ("123456789012.dkr.ecr.us-east-1.amazonaws.com/my-pytorch-inference:1", "xgboost"),
        ("", "xgboost"),
    ],
)
def test_stand_in_is_chosen_from_the_image(image: str, container: str) -> None:
    assert stand_in_for(image) == container


# --- the worker process behind HTTP ------------------------------------------------------------------------


@pytest.fixture
def script_server(tmp_path: Path) -> Iterator[ModelServer]:
    script = textwrap.dedent(DOUBLER) + textwrap.dedent("""
        import os
        def input_fn(body, content_type):
            if "die" in body:
                os._exit(3)
            return np.asarray(__import__("json").loads(body))
    """)
    directory = model_dir(tmp_path, script, {"code/requirements.txt": "pillow\n"})
    with start_model_server(directory, container="script") as running:
        yield running


def test_server_speaks_the_container_contract_and_restarts_a_dead_worker(
    script_server: ModelServer, caplog: pytest.LogCaptureFixture
) -> None:
    assert request(script_server.url, "GET", "/ping").status == 200
    ok = invoke_http(script_server.url, b"[1, 2]", "application/json")
    assert (ok.status, ok.body, ok.headers["Content-Length"]) == (200, b"[2.0, 4.0]", "10")
    died = invoke_http(script_server.url, b'"die"', "application/json")
    assert died.status == 500 and json.loads(died.body)["message"] == "Worker died."
    again = invoke_http(script_server.url, b"[3]", "application/json", accept="text/csv")
    assert (again.status, again.body) == (200, b"6.0\n")


def test_server_reports_requirements_and_a_failed_load_on_ping(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    directory = model_dir(tmp_path, "def model_fn(model_dir):\n    raise OSError('weights missing')\n")
    (directory / "code" / "requirements.txt").write_text("torch==2.6.0\n", encoding="utf-8")
    server = start_model_server(directory, container="script", wait=False)
    try:
        with pytest.raises(Exception, match="model_fn failed: OSError: weights missing"):
            server.wait_until_ready(30)
        ping = request(server.url, "GET", "/ping")
        assert ping.status == 500 and b"weights missing" in ping.body
    finally:
        server.stop()
    assert "code/requirements.txt lists torch==2.6.0: not installed" in caplog.text
