"""A policy statement's Condition block, decided as IAM decides it.

Operators AND together, keys within an operator AND, a key's values OR (NOR for the negated operators). A key the
request does not have makes a condition false, except for the negated operators (true), ``…IfExists`` (true) and
``Null``. ``ForAnyValue:`` / ``ForAllValues:`` compare sets. (IAM user guide: "Condition operators" and "Conditions
with multiple context keys or values".)

A key the local stack never computes (:data:`KNOWN_KEYS` and the keys a request carries) cannot be decided: the
result is :data:`UNKNOWN`, which the evaluation treats as fail closed (an Allow does not apply, a Deny does).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from datetime import datetime
from enum import Enum

from asyncinfer.local.iam import wildcards
from asyncinfer.local.iam.checks import ContextValue

#: Condition keys the local stack puts in a request context (global keys the evaluation adds, and the service keys
#: the request mapping computes). A key missing from a request but listed here is legitimately absent.
KNOWN_KEYS = frozenset(
    {
        "aws:securetransport",
        "aws:principalarn",
        "aws:principalaccount",
        "aws:principaltype",
        "aws:principalisawsservice",
        "aws:principalservicename",
        "aws:userid",
        "aws:sourcearn",
        "aws:sourceaccount",
        "aws:currenttime",
        "aws:epochtime",
        "aws:requestedregion",
        "aws:resourceaccount",
        "s3:resourceaccount",
        "cloudwatch:namespace",
    }
)


class Outcome(Enum):
    TRUE = "true"
    FALSE = "false"
    UNKNOWN = "unknown"  # a key the local stack cannot compute: fail closed


UNKNOWN = Outcome.UNKNOWN


class ConditionError(ValueError):
    """A Condition block IAM would refuse (unknown operator, bad value)."""


def _string_equals(policy: str, value: str) -> bool:
    return policy == value


def _string_equals_ic(policy: str, value: str) -> bool:
    return policy.lower() == value.lower()


def _string_like(policy: str, value: str) -> bool:
    return wildcards.matches(policy, value)


def _arn_like(policy: str, value: str) -> bool:
    return len(value.split(":", 5)) == 6 and wildcards.arn_matches(policy, value)


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError as exc:
        raise ConditionError(f"{text!r} is not a number") from exc


def _date(text: str) -> float:
    try:
        return float(text)  # epoch seconds are allowed
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError as exc:
        raise ConditionError(f"{text!r} is not a date") from exc


def _bool(policy: str, value: str) -> bool:
    return policy.lower() == value.lower()


def _ip(policy: str, value: str) -> bool:
    try:
        return ipaddress.ip_address(value) in ipaddress.ip_network(policy, strict=False)
    except ValueError:
        return False


_Compare = Callable[[str, str], bool]


def _numeric(compare: Callable[[float, float], bool]) -> _Compare:
    return lambda policy, value: compare(_number(value), _number(policy))


def _dated(compare: Callable[[float, float], bool]) -> _Compare:
    return lambda policy, value: compare(_date(value), _date(policy))


# operator → (comparison of one policy value with one request value, negated)
_OPERATORS: dict[str, tuple[_Compare, bool]] = {
    "StringEquals": (_string_equals, False),
    "StringNotEquals": (_string_equals, True),
    "StringEqualsIgnoreCase": (_string_equals_ic, False),
    "StringNotEqualsIgnoreCase": (_string_equals_ic, True),
    "StringLike": (_string_like, False),
    "StringNotLike": (_string_like, True),
    "NumericEquals": (_numeric(lambda a, b: a == b), False),
    "NumericNotEquals": (_numeric(lambda a, b: a == b), True),
    "NumericLessThan": (_numeric(lambda a, b: a < b), False),
    "NumericLessThanEquals": (_numeric(lambda a, b: a <= b), False),
    "NumericGreaterThan": (_numeric(lambda a, b: a > b), False),
    "NumericGreaterThanEquals": (_numeric(lambda a, b: a >= b), False),
    "DateEquals": (_dated(lambda a, b: a == b), False),
    "DateNotEquals": (_dated(lambda a, b: a == b), True),
    "DateLessThan": (_dated(lambda a, b: a < b), False),
    "DateLessThanEquals": (_dated(lambda a, b: a <= b), False),
    "DateGreaterThan": (_dated(lambda a, b: a > b), False),
    "DateGreaterThanEquals": (_dated(lambda a, b: a >= b), False),
    "Bool": (_bool, False),
    "BinaryEquals": (_string_equals, False),
    "IpAddress": (_ip, False),
    "NotIpAddress": (_ip, True),
    "ArnEquals": (_arn_like, False),
    "ArnLike": (_arn_like, False),
    "ArnNotEquals": (_arn_like, True),
    "ArnNotLike": (_arn_like, True),
}


def operator_known(operator: str) -> bool:
    """Whether IAM knows ``operator`` (with its ``ForAnyValue:``/``ForAllValues:`` prefix and ``IfExists`` suffix)."""
    base = operator.split(":", 1)[1] if ":" in operator else operator
    base = base.removesuffix("IfExists")
    return base == "Null" or base in _OPERATORS


def _values(value: ContextValue) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


def _key_outcome(operator: str, key: str, policy_values: tuple[str, ...], context: Mapping[str, ContextValue]) -> bool:
    qualifier, _, base = operator.rpartition(":")
    if_exists = base.endswith("IfExists") and base != "IfExists"
    base = base.removesuffix("IfExists")
    present = key in context
    if base == "Null":
        wanted_absent = {v.lower() for v in policy_values} == {"true"}
        return (not present) if wanted_absent else present
    compare, negated = _OPERATORS[base]
    if not present:
        if qualifier == "ForAllValues":
            return True
        if qualifier == "ForAnyValue":
            return False
        return if_exists or negated
    request = _values(context[key])

    def one(value: str) -> bool:
        matched = any(compare(policy, value) for policy in policy_values)
        return not matched if negated else matched

    if qualifier == "ForAllValues":
        return all(one(value) for value in request)
    if qualifier == "ForAnyValue":
        return any(one(value) for value in request)
    if negated:
        return all(one(value) for value in request)
    return any(one(value) for value in request)


def _absent_by_service(key: str, service: str) -> bool:
    """A service's own condition keys are only ever in that service's requests (``kms:ViaService`` is never in an
    S3 request): for any other service the key is simply absent, as on AWS."""
    prefix = key.split(":", 1)[0]
    return prefix not in ("aws", service)


def evaluate_conditions(
    block: Mapping[str, Mapping[str, tuple[str, ...]]], context: Mapping[str, ContextValue], service: str = ""
) -> tuple[Outcome, tuple[str, ...]]:
    """The block's outcome against ``context`` (keys lower-cased) for a request to ``service`` (the action's prefix),
    and the keys it could not decide. Conditions AND together, so a condition that is false makes the block false
    even when another one cannot be decided; UNKNOWN only when every decidable condition holds."""
    unknown: list[str] = []
    for operator, keys in block.items():
        for key, policy_values in keys.items():
            if key not in context and key not in KNOWN_KEYS and not _absent_by_service(key, service):
                unknown.append(key)
                continue
            if not _key_outcome(operator, key, policy_values, context):
                return Outcome.FALSE, ()
    if unknown:
        return UNKNOWN, tuple(unknown)
    return Outcome.TRUE, ()
