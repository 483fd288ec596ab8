"""IAM's wildcards: ``*`` (any run of characters) and ``?`` (one character); nothing else is special.

In an ARN a wildcard stays within its segment for the first five colon-separated segments (partition, service,
region, account); the resource part may hold colons and slashes of its own."""

from __future__ import annotations

import re
from functools import lru_cache


@lru_cache(maxsize=8192)
def pattern(text: str, ignore_case: bool = False) -> re.Pattern[str]:
    parts = (".*" if c == "*" else "." if c == "?" else re.escape(c) for c in text)
    return re.compile("".join(parts), re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def matches(text: str, value: str, ignore_case: bool = False) -> bool:
    return text == "*" or pattern(text, ignore_case).fullmatch(value) is not None


@lru_cache(maxsize=16384)
def arn_matches(text: str, arn: str) -> bool:
    """Whether the ARN pattern ``text`` covers ``arn`` (a plain wildcard match when either is not an ARN)."""
    if text == "*":
        return True
    p, a = text.split(":", 5), arn.split(":", 5)
    if len(p) != 6 or len(a) != 6:
        return matches(text, arn)
    return all(matches(ps, av) for ps, av in zip(p, a, strict=True))
