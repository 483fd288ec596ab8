"""Lambda REST calls as AWS authorizes them: invoking and reading a function, on its ARN
(``arn:aws:lambda:REGION:ACCOUNT:function:NAME``, ``…:NAME:QUALIFIER`` for a version or alias)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import unquote

from asyncinfer.local.iam.checks import Check, MappedRequest, UnmappedRequest

# /2015-03-31/functions/NAME[/invocations|/configuration]
_FUNCTION_PATH = re.compile(r"^/2015-03-31/functions/([^/]+)(?:/([a-z-]+))?/?$")
_OPERATIONS = {
    ("POST", "invocations"): ("Invoke", "lambda:InvokeFunction"),
    ("GET", None): ("GetFunction", "lambda:GetFunction"),
    ("GET", "configuration"): ("GetFunctionConfiguration", "lambda:GetFunctionConfiguration"),
}


def function_arn(name: str, qualifier: str | None, region: str, account: str) -> str:
    """A function's ARN from a name, a partial ARN (``ACCOUNT:function:NAME``) or a full ARN, with its qualifier."""
    if name.startswith("arn:"):
        arn = name
    elif ":function:" in name:
        arn = f"arn:aws:lambda:{region}:{name}"
    else:
        arn = f"arn:aws:lambda:{region}:{account}:function:{name}"
    return f"{arn}:{qualifier}" if qualifier and arn.count(":") == 6 else arn


def map_lambda(method: str, path: str, query: Mapping[str, str], region: str, account: str) -> MappedRequest:
    """The operation and check of a Lambda REST call; UnmappedRequest for any other path."""
    if method == "GET" and path.rstrip("/") == "/2015-03-31/functions":
        return MappedRequest("lambda:ListFunctions", (Check("lambda:ListFunctions", "*"),))
    found = _FUNCTION_PATH.match(path)
    known = _OPERATIONS.get((method, found.group(2))) if found else None
    if not found or not known:
        raise UnmappedRequest(f"lambda: {method} {path} is not mapped")
    operation, action = known
    arn = function_arn(unquote(found.group(1)), query.get("Qualifier"), region, account)
    return MappedRequest(f"lambda:{operation}", (Check(action, arn),))
