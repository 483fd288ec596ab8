"""A file's user-defined S3 metadata (``x-amz-meta-*``): kept on its job, returned in its result event, and one
designated key forwarded to the model as ``CustomAttributes``.

The submitter reads the metadata from the ranged GetObject it already makes (no extra call), before it claims the
job, and the claim records it: nothing else ever reads the input (the topic handlers have no S3 grant on it).

Values are text as the uploader meant it: S3 stores a non-ASCII value set by a client that sends UTF-8 headers and
returns it RFC 2047-encoded (``=?UTF-8?B?...?=``; S3 User Guide, "Working with object metadata"), which
:func:`decoded` turns back into the text. botocore itself refuses non-ASCII metadata, so such values come from other
clients (the console, SDKs that encode). Entries S3 does not return at all (unprintable: ``x-amz-missing-meta``)
are absent here and in the event.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping

# Upload with ``x-amz-meta-custom-attributes: VALUE`` (``aws s3 cp --metadata custom-attributes=VALUE``). S3
# lower-cases metadata keys, so this is the one spelling.
CUSTOM_ATTRIBUTES_KEY = "custom-attributes"
MAX_CUSTOM_ATTRIBUTES = 1024  # InvokeEndpointAsync: at most 1,024 visible US-ASCII characters (RFC 7230 field-value)
MAX_METADATA_BYTES = 2048  # S3: user metadata in a PUT, keys and values, UTF-8 bytes (moto does not enforce it)
# An RFC 2047 encoded word; whitespace between two of them is not part of the text.
_ENCODED_WORD = re.compile(r"=\?([^?\s*]+)(?:\*[^?\s]*)?\?([BbQq])\?([^?\s]*)\?=")
_BETWEEN_WORDS = re.compile(r"(?<=\?=)\s+(?==\?[^?\s]+\?[BbQq]\?)")


def decoded(metadata: Mapping[str, str]) -> dict[str, str]:
    """The metadata with RFC 2047 encoded words in its values decoded. A word that does not decode (unknown
    charset, broken base64) stays as it is: the value is never lost."""
    return {name: _decoded_value(value) for name, value in metadata.items()}


def _decoded_value(value: str) -> str:
    if not _ENCODED_WORD.search(value):
        return value
    return _ENCODED_WORD.sub(_decoded_word, _BETWEEN_WORDS.sub("", value))


def _decoded_word(match: re.Match[str]) -> str:
    charset, encoding, text = match.groups()
    try:
        if encoding in "Bb":
            raw = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
        else:
            raw = binascii.a2b_qp(text.replace("_", " "), header=False)
        return raw.decode(charset)
    except (binascii.Error, LookupError, UnicodeDecodeError, ValueError):
        return match.group(0)


def size_bytes(metadata: Mapping[str, str]) -> int:
    """What S3 counts against its 2 KB: the UTF-8 bytes of every key (without ``x-amz-meta-``) and value."""
    return sum(len(name.encode()) + len(value.encode()) for name, value in metadata.items())


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
        if char > "\x7f":
            raise InvalidCustomAttributes(
                f"{where} has the non-ASCII {char!r} at position {index} (S3 returns non-ASCII metadata "
                "RFC 2047-encoded; it was decoded); CustomAttributes takes visible ASCII characters only"
            )
        if not ("!" <= char <= "~" or (char in " \t" and 0 < index < len(value) - 1)):
            raise InvalidCustomAttributes(
                f"{where} has {char!r} at position {index}; CustomAttributes takes visible ASCII characters only "
                "(spaces and tabs only between them)"
            )
    return value
