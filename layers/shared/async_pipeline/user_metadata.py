"""A file's user-defined S3 metadata (``x-amz-meta-*``): kept on its job, returned in its result event, and one
designated key forwarded to the model as ``CustomAttributes``.

The submitter reads the metadata from the ranged GetObject it already makes (no extra call), before it claims the
job, and the claim records it: nothing else ever reads the input (the topic handlers have no S3 grant on it).
"""

from __future__ import annotations

from collections.abc import Mapping

# Upload with ``x-amz-meta-custom-attributes: VALUE`` (``aws s3 cp --metadata custom-attributes=VALUE``). S3
# lower-cases metadata keys, so this is the one spelling.
CUSTOM_ATTRIBUTES_KEY = "custom-attributes"
MAX_CUSTOM_ATTRIBUTES = 1024  # InvokeEndpointAsync: at most 1,024 visible US-ASCII characters (RFC 7230 field-value)


class InvalidCustomAttributes(ValueError):
    """The designated metadata value cannot be sent as CustomAttributes; the message says why (the job's reason)."""


def custom_attributes(metadata: Mapping[str, str]) -> str | None:
    """The value to send as ``CustomAttributes``: the designated key's, verbatim; None when it is absent or empty.

    Raises :class:`InvalidCustomAttributes` unless it is at most 1,024 characters, each visible ASCII (0x21-0x7E)
    or a space or tab between two of them (an HTTP field-value: no leading or trailing whitespace)."""
    value = metadata.get(CUSTOM_ATTRIBUTES_KEY)
    if not value:
        return None
    where = f"x-amz-meta-{CUSTOM_ATTRIBUTES_KEY}"
    if len(value) > MAX_CUSTOM_ATTRIBUTES:
        raise InvalidCustomAttributes(
            f"{where} is {len(value)} characters; CustomAttributes takes at most {MAX_CUSTOM_ATTRIBUTES}"
        )
    for index, char in enumerate(value):
        if not ("!" <= char <= "~" or (char in " \t" and 0 < index < len(value) - 1)):
            raise InvalidCustomAttributes(
                f"{where} has {char!r} at position {index}; CustomAttributes takes visible ASCII characters only "
                "(spaces and tabs only between them)"
            )
    return value
