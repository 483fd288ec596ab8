"""What the tests share besides fixtures: sample events from events/, the template, a Lambda context and the
result event's JSON Schema. Test modules import these from here, never from conftest or another test module."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"
TEMPLATE = ROOT / "template.yaml"
RESULT_SCHEMA = ROOT / "schemas" / "result-event.schema.json"


def load_event(name: str) -> dict[str, Any]:
    """A sample event from events/ (the same files `sam local invoke -e` takes)."""
    loaded: dict[str, Any] = json.loads((EVENTS / name).read_text(encoding="utf-8"))
    return loaded


def load_template() -> dict[str, Any]:
    from cfnlint.decode import cfn_yaml

    loaded: dict[str, Any] = cfn_yaml.load(str(TEMPLATE))
    return loaded


def validate_result_detail(detail: dict[str, Any]) -> None:
    """Raise unless ``detail`` is a valid result event detail (schemas/result-event.schema.json)."""
    schema = json.loads(RESULT_SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator(schema).validate(detail)


@dataclass
class FakeLambdaContext:
    """What Powertools and the handlers read from Lambda's context object."""

    function_name: str = "test-function"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:test-function"
    aws_request_id: str = ""
    remaining_ms: int = 30_000

    def __post_init__(self) -> None:
        self.aws_request_id = self.aws_request_id or str(uuid.uuid4())

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms
