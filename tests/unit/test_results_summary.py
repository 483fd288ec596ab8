"""The summary `asyncinfer demo` and `watch` print: failures grouped by reason, whatever the file's specifics."""

from __future__ import annotations

from async_pipeline import result_events
from async_pipeline.jobs import Job, JobStatus

from asyncinfer.job_results import cut
from asyncinfer.result_summary import Summary, grouping_reason, normalize_reason
from asyncinfer.results import Received, follow

PARSER_415 = (
    'ClientError: Received client error (415) from model with message "Loading csv data failed with Exception, '
    'please ensure data is in csv format:\n {exc_type}\n {detail}". See https://us-east-1.console.aws.amazon.com/...'
)


def _failed(inference_id: str, reason: str) -> Received:
    job = Job(
        inference_id=inference_id,
        status=JobStatus.FAILED,
        input_location=f"s3://in/{inference_id}.csv",
        failure_reason=reason,
        failure_location=f"s3://out/failure/{inference_id}-error.out",
    )
    return Received(result_events.build(job), received_at=100.0)


def test_one_failure_with_different_parser_details_is_one_row() -> None:
    summary = Summary()
    summary.add(_failed("a" * 64, PARSER_415.format(exc_type="ValueError", detail="could not convert 'x'")), 99.0)
    summary.add(_failed("b" * 64, PARSER_415.format(exc_type="IndexError", detail="ragged row 3")), 99.0)
    summary.add(_failed("c" * 64, "the input object is empty (0 bytes); the endpoint needs a payload"), 99.0)
    assert summary.failed == 3
    assert sorted(summary.reasons.values()) == [1, 2]
    assert any("(415)" in reason and "please ensure data is in csv format:" in reason for reason in summary.reasons)


def test_normalized_reasons_hide_locations_ids_and_times() -> None:
    # Keys may hold spaces: a location runs to the next " (", ")" or ": ", as in the emulator's and handlers' reasons.
    reason = "record 7 (s3://in/my file.csv): took 1.25 seconds [12:00:01], id 0123456789abcdef0123"
    assert normalize_reason(reason) == "record N (s3://...): took N seconds [hh:mm:ss], id <id>"
    assert normalize_reason("x" * 500, 50) == "x" * 500  # one token: never cut into another word


def test_a_long_single_token_reason_is_never_cut_mid_word() -> None:
    token = "java.lang.IllegalStateException$" + "Inner" * 20
    assert cut("Failed: " + token, 60) == "Failed: " + token  # the only boundary is in the first half
    text = "model failed at s3://bucket/some/long/path/to/the/input/file.csv today"
    shown = cut(text, 50)
    assert len(shown) <= 50 and shown.endswith("/…") and text.startswith(shown[:-1])


def test_grouped_reasons_say_when_lines_were_left_out() -> None:
    assert grouping_reason("ClientError: 415\n ValueError\n could not convert") == "ClientError: 415 [+2 lines]"
    assert grouping_reason("the input object is empty") == "the input object is empty"


class _Source:
    """Result events in batches, as successive polls of the results queue bring them."""

    def __init__(self, *batches: list[Received]) -> None:
        self._batches = list(batches)

    def poll(self) -> list[Received]:
        return self._batches.pop(0) if self._batches else []


def test_follow_stops_once_the_expected_events_arrived_and_reports_each() -> None:
    first, second = _failed("a" * 64, "bad input"), _failed("b" * 64, "bad input")
    heard: list[tuple[str, int]] = []
    summary, received = follow(
        _Source([first], [second]),
        expect=2,
        timeout=5.0,
        uploaded={first.input_key: 90.0},
        on_result=lambda item, so_far: heard.append((item.input_key, so_far.total)),
    )
    assert received == [first, second]
    assert heard == [(first.input_key, 1), (second.input_key, 2)]
    assert summary.failed == 2
    assert summary.latencies_s == [10.0]


def test_follow_without_an_expected_count_ends_after_the_timeout_without_events() -> None:
    summary, received = follow(_Source([], []), expect=None, timeout=0.05)
    assert (summary.total, received) == (0, [])
