"""Condition blocks decided as the IAM user guide says ("Condition operators", "Conditions with multiple context
keys or values")."""

from __future__ import annotations

import pytest

from asyncinfer.local.iam.conditions import Outcome, evaluate_conditions


def decide(block: dict[str, dict[str, tuple[str, ...]]], **context: str | tuple[str, ...]) -> Outcome:
    return evaluate_conditions(block, {k.replace("__", ":"): v for k, v in context.items()})[0]


SECURE_FALSE = {"Bool": {"aws:securetransport": ("false",)}}


def test_bool_matches_only_the_stated_value() -> None:
    assert decide(SECURE_FALSE, aws__securetransport="false") is Outcome.TRUE
    assert decide(SECURE_FALSE, aws__securetransport="true") is Outcome.FALSE


def test_values_of_one_key_or_together_and_keys_and_together() -> None:
    block = {"StringEquals": {"cloudwatch:namespace": ("AWS/SageMaker", "/aws/sagemaker/Endpoints")}}
    assert decide(block, cloudwatch__namespace="/aws/sagemaker/Endpoints") is Outcome.TRUE
    assert decide(block, cloudwatch__namespace="Other") is Outcome.FALSE
    two = {"StringEquals": {"s3:resourceaccount": ("1",), "cloudwatch:namespace": ("N",)}}
    assert decide(two, s3__resourceaccount="1", cloudwatch__namespace="N") is Outcome.TRUE
    assert decide(two, s3__resourceaccount="1", cloudwatch__namespace="M") is Outcome.FALSE


def test_a_missing_key_is_false_except_for_negated_ifexists_and_null() -> None:
    assert decide({"StringEquals": {"aws:sourcearn": ("a",)}}) is Outcome.FALSE
    assert decide({"StringNotEquals": {"aws:sourcearn": ("a",)}}) is Outcome.TRUE
    assert decide({"StringEqualsIfExists": {"aws:sourcearn": ("a",)}}) is Outcome.TRUE
    assert decide({"Null": {"aws:sourcearn": ("true",)}}) is Outcome.TRUE
    assert decide({"Null": {"aws:sourcearn": ("false",)}}) is Outcome.FALSE
    assert decide({"StringEqualsIfExists": {"aws:sourcearn": ("a",)}}, aws__sourcearn="b") is Outcome.FALSE


def test_negated_operators_nor_their_values() -> None:
    block = {"StringNotEquals": {"aws:principalaccount": ("1", "2")}}
    assert decide(block, aws__principalaccount="2") is Outcome.FALSE
    assert decide(block, aws__principalaccount="3") is Outcome.TRUE


def test_like_operators_use_only_iam_wildcards() -> None:
    like = {"StringLike": {"aws:userid": ("a.c*",)}}
    assert decide(like, aws__userid="a.cdef") is Outcome.TRUE
    assert decide(like, aws__userid="abcdef") is Outcome.FALSE  # '.' is not a regular expression here
    arn = {"ArnLike": {"aws:sourcearn": ("arn:aws:sns:*:123:topic-?",)}}
    assert decide(arn, aws__sourcearn="arn:aws:sns:us-east-1:123:topic-1") is Outcome.TRUE
    # a wildcard in the region segment does not swallow the account's colon
    assert decide(arn, aws__sourcearn="arn:aws:sns:us-east-1:9:123:topic-1") is Outcome.FALSE
    assert decide({"ArnEquals": {"aws:sourcearn": ("arn:aws:sns:r:1:t",)}}, aws__sourcearn="not-an-arn") is (
        Outcome.FALSE
    )


def test_set_qualifiers() -> None:
    any_of = {"ForAnyValue:StringEquals": {"aws:sourcearn": ("a",)}}
    all_of = {"ForAllValues:StringEquals": {"aws:sourcearn": ("a", "b")}}
    assert decide(any_of, aws__sourcearn=("x", "a")) is Outcome.TRUE
    assert decide(any_of) is Outcome.FALSE
    assert decide(all_of, aws__sourcearn=("a", "b")) is Outcome.TRUE
    assert decide(all_of, aws__sourcearn=("a", "c")) is Outcome.FALSE
    assert decide(all_of) is Outcome.TRUE


@pytest.mark.parametrize(
    ("operator", "value", "expected"),
    [
        ("NumericLessThan", "5", Outcome.TRUE),
        ("NumericGreaterThanEquals", "10", Outcome.TRUE),
        ("NumericGreaterThan", "10", Outcome.FALSE),
        ("DateLessThan", "2020-01-01T00:00:00Z", Outcome.TRUE),
        ("DateGreaterThan", "2020-01-01T00:00:00Z", Outcome.FALSE),
    ],
)
def test_numeric_and_date_operators_compare_the_request_with_the_policy(
    operator: str, value: str, expected: Outcome
) -> None:
    policy = "10" if operator.startswith("Numeric") else "2021-01-01T00:00:00Z"
    assert decide({operator: {"aws:epochtime": (policy,)}}, aws__epochtime=value) is expected


def test_a_key_the_local_stack_never_computes_is_unknown_not_false() -> None:
    block = {"StringEquals": {"kms:viaservice": ("sns.us-east-1.amazonaws.com",)}}
    outcome, keys = evaluate_conditions(block, {}, "kms")
    assert outcome is Outcome.UNKNOWN
    assert keys == ("kms:viaservice",)
    # …but a known global key that this request lacks is simply absent
    assert evaluate_conditions({"StringEquals": {"aws:sourcearn": ("a",)}}, {}, "s3") == (Outcome.FALSE, ())
    # …as is another service's key: kms:ViaService is never in an S3 request (IfExists holds, as on AWS)
    assert evaluate_conditions({"StringEqualsIfExists": {"kms:viaservice": ("x",)}}, {}, "s3")[0] is Outcome.TRUE
    # …while a global key the local stack does not compute stays undecidable
    assert evaluate_conditions({"StringEquals": {"aws:sourcevpce": ("v",)}}, {}, "s3")[0] is Outcome.UNKNOWN


def test_a_false_condition_decides_the_block_even_next_to_an_undecidable_one() -> None:
    # AWS ANDs conditions: TLS in use makes this DenyInsecureTransport-style block false, whatever aws:SourceVpce is.
    block = {
        "Bool": {"aws:securetransport": ("false",)},
        "StringNotEquals": {"aws:sourcevpce": ("vpce-1",)},
    }
    assert evaluate_conditions(block, {"aws:securetransport": "true"}, "s3") == (Outcome.FALSE, ())
    assert evaluate_conditions(block, {"aws:securetransport": "false"}, "s3")[0] is Outcome.UNKNOWN
