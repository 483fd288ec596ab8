"""Invocations over real HTTP: content types, Accept, and the errors the container answers, in its order."""

from __future__ import annotations

import http.client
import json
from pathlib import Path

import numpy as np
import pytest
import xgboost as xgb

from asyncinfer.model import demo
from asyncinfer.model.artifact import LoadedModel, ModelLoadError
from asyncinfer.model.inference import InvocationResult, invoke
from asyncinfer.model.server import ModelServer, start_model_server
from tests.unit.model.support import (
    csv_scores,
    expected,
    invoke_http,
)

# --- content types ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("content_type", ["text/csv", "text/csv; charset=utf-8", "text/csv;label_size=1", "TEXT/CSV"])
def test_csv_predictions_equal_booster(server: ModelServer, booster: xgb.Booster, content_type: str) -> None:
    rows = demo.make_input_rows(25, seed=1, missing_fraction=0.15)
    reply = invoke_http(server.url, demo.rows_to_csv(rows), content_type)
    assert reply.status == 200, reply.body
    np.testing.assert_array_equal(csv_scores(reply.body), expected(booster, rows))


@pytest.mark.parametrize("delimiter", [";", "\t"])
def test_csv_delimiter_is_sniffed(server: ModelServer, booster: xgb.Booster, delimiter: str) -> None:
    rows = demo.make_input_rows(4, seed=2, missing_fraction=0.2)
    reply = invoke_http(server.url, demo.rows_to_csv(rows, delimiter=delimiter) + b"\n")
    assert reply.status == 200, reply.body
    np.testing.assert_array_equal(csv_scores(reply.body), expected(booster, rows))


def test_csv_with_fewer_columns_is_accepted_as_missing(server: ModelServer, booster: xgb.Booster) -> None:
    # The real container does the same: xgboost only refuses *more* columns than the model has.
    narrow = demo.make_input_rows(3, seed=3, n_features=demo.N_FEATURES - 1)
    padded = np.hstack([narrow, np.full((3, 1), np.nan)])
    reply = invoke_http(server.url, demo.rows_to_csv(narrow))
    assert reply.status == 200
    np.testing.assert_array_equal(csv_scores(reply.body), expected(booster, padded))


@pytest.mark.parametrize("content_type", ["text/libsvm", "text/x-libsvm", "libsvm", None])
def test_libsvm_predictions_equal_booster(server: ModelServer, booster: xgb.Booster, content_type: str | None) -> None:
    # No Content-Type at all means libsvm, as in the container.
    rows = demo.make_input_rows(25, seed=4, missing_fraction=0.15)
    rows[:, -1] = np.where(np.isnan(rows[:, -1]), 0.5, rows[:, -1])  # keep the width: the last column is present
    reply = invoke_http(server.url, demo.rows_to_libsvm(rows), content_type)
    assert reply.status == 200, reply.body
    np.testing.assert_array_equal(csv_scores(reply.body), expected(booster, rows))


def test_libsvm_label_tokens_are_ignored(server: ModelServer, booster: xgb.Booster) -> None:
    rows = demo.make_input_rows(2, seed=6)
    labelled = b"\n".join(b"1 " + line for line in demo.rows_to_libsvm(rows).split(b"\n"))
    reply = invoke_http(server.url, labelled, "text/libsvm")
    np.testing.assert_array_equal(csv_scores(reply.body), expected(booster, rows))


# --- Accept -----------------------------------------------------------------------------------------------------------


def test_accept_text_csv_one_prediction_per_line(server: ModelServer, booster: xgb.Booster) -> None:
    rows = demo.make_input_rows(3, seed=8)
    reply = invoke_http(server.url, demo.rows_to_csv(rows), accept="text/csv")
    assert reply.headers["Content-Type"] == "text/csv; charset=utf-8"  # Flask adds the charset to text/*
    # str(np.float32): the shortest repr that round-trips the float32 (what numpy.savetxt(fmt="%s") prints).
    assert reply.body.decode() == "".join(f"{score!s}\n" for score in expected(booster, rows))
    assert reply.headers["Content-Length"] == str(len(reply.body))
    assert reply.headers.get("Transfer-Encoding") is None


def test_accept_json(server: ModelServer, booster: xgb.Booster) -> None:
    rows = demo.make_input_rows(3, seed=9)
    reply = invoke_http(server.url, demo.rows_to_csv(rows), accept="application/json")
    assert reply.headers["Content-Type"] == "application/json"
    assert json.loads(reply.body) == {"predictions": [{"score": s} for s in expected(booster, rows).tolist()]}


def test_accept_jsonlines(server: ModelServer, booster: xgb.Booster) -> None:
    rows = demo.make_input_rows(3, seed=10)
    reply = invoke_http(server.url, demo.rows_to_csv(rows), accept="application/jsonlines")
    assert reply.headers["Content-Type"] == "application/jsonlines"
    lines = reply.body.decode().splitlines()
    assert [json.loads(line) for line in lines] == [{"score": s} for s in expected(booster, rows).tolist()]


@pytest.mark.parametrize("accept", [None, "*/*", ""])
def test_missing_accept_defaults_to_csv(server: ModelServer, accept: str | None) -> None:
    reply = invoke_http(server.url, demo.make_csv_payload(2), accept=accept)
    assert reply.status == 200
    assert reply.headers["Content-Type"] == "text/csv; charset=utf-8"


def test_accept_parameters_are_ignored(server: ModelServer) -> None:
    reply = invoke_http(server.url, demo.make_csv_payload(2), accept="Application/JSON; charset=utf-8")
    assert reply.status == 200
    assert reply.headers["Content-Type"] == "application/json"


def test_default_accept_from_environment(artifact: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT", "application/jsonlines")
    with start_model_server(artifact, port=0) as srv:
        reply = invoke_http(srv.url, demo.make_csv_payload(2), accept="*/*")
    assert reply.headers["Content-Type"] == "application/jsonlines"
    assert len(reply.body.decode().splitlines()) == 2


def test_unsupported_default_accept_is_refused_at_construction(artifact: Path) -> None:
    with pytest.raises(ValueError, match="default Accept"):
        ModelServer(artifact, default_accept="application/xml")


# --- errors -----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", demo.rejected_requests(), ids=lambda case: case.name)
def test_rejected_requests(server: ModelServer, case: demo.RejectedRequest) -> None:
    reply = invoke_http(server.url, case.body, case.content_type, case.accept)
    assert reply.status == case.expected_status, reply.body
    assert reply.headers.get("Transfer-Encoding") is None
    if case.expected_status == 204:
        assert reply.body == b""
    else:
        assert reply.headers["Content-Length"] == str(len(reply.body))
        assert reply.body  # the container always says why


def test_feature_count_error_carries_xgboost_message(server: ModelServer) -> None:
    wide = demo.rows_to_csv(demo.make_input_rows(1, n_features=demo.N_FEATURES + 2))
    reply = invoke_http(server.url, wide)
    assert reply.status == 400
    text = reply.body.decode()
    assert text.startswith("Unable to evaluate payload provided:")
    assert f"({demo.N_FEATURES} vs. {demo.N_FEATURES + 2})" in text
    assert "Stack trace" not in text


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "text/libsvm; charset=utf-8", "application/x-recordio-protobuf", "application/x-parquet", ""],
)
def test_unsupported_content_types_are_415(server: ModelServer, content_type: str) -> None:
    assert invoke_http(server.url, demo.make_csv_payload(1), content_type).status == 415


@pytest.mark.parametrize("body", [b"   \n  ", b"\xff\xfe,1,2", b"1,2,abc,4,5,6"])
def test_unparsable_csv_is_415(server: ModelServer, body: bytes) -> None:
    assert invoke_http(server.url, body, "text/csv").status == 415


@pytest.mark.parametrize("body", [b"not libsvm at all", b"0:x 1:2", b"-1:1.0"])
def test_unparsable_libsvm_is_415(server: ModelServer, body: bytes) -> None:
    assert invoke_http(server.url, body, "text/libsvm").status == 415


def test_checks_run_in_the_containers_order() -> None:
    def broken_model() -> LoadedModel:
        raise ModelLoadError("boom")

    def run(body: bytes, content_type: str, accept: str) -> InvocationResult:
        return invoke(body, content_type, accept, broken_model)

    # A bad payload is reported before a broken model, and a broken model before a bad Accept.
    assert run(b"", "bad/type", "bad/accept").status == 204
    assert run(b"1,2", "bad/type", "bad/accept").status == 415
    assert run(b"1,2", "text/csv", "bad/accept").status == 500


def test_request_larger_than_limit_is_413(artifact: Path) -> None:
    srv = ModelServer(artifact, port=0, max_content_length=1024)
    with srv:
        srv.start()
        reply = invoke_http(srv.url, demo.make_csv_payload(100))
        assert reply.status == 413
        assert invoke_http(srv.url, demo.make_csv_payload(2)).status == 200


def test_chunked_request_body_is_read(server: ModelServer, booster: xgb.Booster) -> None:
    rows = demo.make_input_rows(5, seed=11)
    payload = demo.rows_to_csv(rows)
    conn = http.client.HTTPConnection(server.url.removeprefix("http://"), timeout=30)
    try:
        conn.request("POST", "/invocations", body=iter([payload[:10], payload[10:]]), encode_chunked=True,
                     headers={"Content-Type": "text/csv", "Transfer-Encoding": "chunked"})  # fmt: skip
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    assert response.status == 200
    np.testing.assert_array_equal(csv_scores(body), expected(booster, rows))


def test_keep_alive_connection_serves_several_requests(server: ModelServer) -> None:
    conn = http.client.HTTPConnection(server.url.removeprefix("http://"), timeout=30)
    try:
        for _ in range(3):
            conn.request("POST", "/invocations", body=demo.make_csv_payload(2), headers={"Content-Type": "text/csv"})
            response = conn.getresponse()
            assert response.status == 200
            response.read()
            conn.request("GET", "/ping")
            ping = conn.getresponse()
            assert ping.status == 200
            ping.read()
    finally:
        conn.close()
