"""template.yaml → a resolved CloudFormation template, offline.

The SAM transform is aws-sam-translator's own (no network, no credentials). Intrinsic functions are resolved here
rather than by moto's CloudFormation, which mis-resolves ``Fn::If``/``AWS::NoValue`` inside IAM policies and
``Ref`` on event buses: the local stack must not depend on those gaps.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeAlias

#: A part of a template as JSON (a string, number, list, object...): an intrinsic function may stand anywhere,
#: so a fragment's shape is known only once it is resolved.
JSONValue: TypeAlias = Any
#: A template, or any JSON object in one (a resource, its properties).
Template: TypeAlias = dict[str, JSONValue]

LOCAL_CODE_BUCKET = "local-code"  # CodeUri/ContentUri are rewritten to s3://local-code/<path> for the transform
NO_VALUE = object()


class TemplateError(RuntimeError):
    """The template cannot be transformed or resolved; the message names the resource and the reason."""


class Unresolved(TemplateError):
    """A value refers to a resource whose physical id is not known yet."""


def _plain(node: JSONValue) -> JSONValue:
    # cfn-lint's loader returns str/dict subclasses carrying line numbers; the transform wants plain JSON.
    return json.loads(json.dumps(node))


def load_sam(path: Path) -> Template:
    from cfnlint.decode import cfn_yaml  # here, not at the top: it imports sympy (~3.7 s), which most commands skip

    loaded: Template = _plain(cfn_yaml.load(str(path)))
    return loaded


def transform(sam: Template, parameters: Mapping[str, str], region: str) -> Template:
    """Run the SAM transform offline. Local code paths become ``s3://local-code/<path>`` so they survive it."""
    import boto3
    from samtranslator.model.exceptions import InvalidDocumentException
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    sam = json.loads(json.dumps(sam))
    for resource in sam.get("Resources", {}).values():
        props = resource.get("Properties", {})
        for key in ("CodeUri", "ContentUri"):
            if isinstance(props.get(key), str) and not props[key].startswith("s3://"):
                props[key] = f"s3://{LOCAL_CODE_BUCKET}/{props[key].rstrip('/')}"
    # The translator takes its region from a boto3 session (pseudo parameters); no call is made with it.
    translator = Translator(None, Parser(), boto_session=boto3.Session(region_name=region))
    try:
        result: Template = translator.translate(sam, parameter_values=dict(parameters), get_managed_policy_map=dict)
    except InvalidDocumentException as exc:
        causes = "; ".join(str(cause) for cause in exc.causes)
        raise TemplateError(f"SAM transform failed: {causes}") from exc
    return result


def code_path(code: Mapping[str, JSONValue], root: Path) -> Path:
    """The local folder behind a transformed ``Code``/``Content`` (see :func:`transform`)."""
    if code.get("S3Bucket") != LOCAL_CODE_BUCKET:
        raise TemplateError(f"code is not local: {code}")
    return root / str(code["S3Key"])


@dataclass
class Resolver:
    """Resolves intrinsic functions against parameters, pseudo parameters and known physical ids."""

    template: Template
    parameters: dict[str, str]
    pseudo: dict[str, str]
    refs: dict[str, JSONValue] = field(default_factory=dict)  # logical id → Ref value
    attrs: dict[tuple[str, str], JSONValue] = field(default_factory=dict)  # (logical id, attribute) → value
    _conditions: dict[str, bool] = field(default_factory=dict)

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            definition = self.template.get("Conditions", {}).get(name)
            if definition is None:
                raise TemplateError(f"unknown condition {name}")
            self._conditions[name] = bool(self.resolve(definition))
        return self._conditions[name]

    def resource_enabled(self, logical_id: str) -> bool:
        name = self.template["Resources"][logical_id].get("Condition")
        return name is None or self.condition(name)

    def ref(self, name: str) -> JSONValue:
        if name in self.pseudo:
            return self.pseudo[name]
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.parameters:
            return self.parameters[name]
        if name in self.refs:
            return self.refs[name]
        raise Unresolved(f"Ref {name} is not known yet")

    def get_att(self, logical_id: str, attribute: str) -> JSONValue:
        if (logical_id, attribute) in self.attrs:
            return self.attrs[(logical_id, attribute)]
        raise Unresolved(f"GetAtt {logical_id}.{attribute} is not known yet")

    def resolve(self, node: JSONValue) -> JSONValue:
        value = self._resolve(node)
        return None if value is NO_VALUE else value

    def _resolve(self, node: JSONValue) -> JSONValue:
        if isinstance(node, list):
            items = [self._resolve(item) for item in node]
            return [item for item in items if item is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, arg),) = node.items()
            handler = self._FUNCTIONS.get(key)
            if handler is not None:
                return handler(self, arg)
        resolved = {key: self._resolve(value) for key, value in node.items()}
        return {key: value for key, value in resolved.items() if value is not NO_VALUE}

    def _fn_ref(self, arg: JSONValue) -> JSONValue:
        return self.ref(arg)

    def _fn_get_att(self, arg: JSONValue) -> JSONValue:
        logical_id, attribute = arg.split(".", 1) if isinstance(arg, str) else arg
        return self.get_att(logical_id, self._resolve(attribute))

    def _fn_sub(self, arg: JSONValue) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], self._resolve(arg[1]))

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return str(variables[name])
            if "." in name and not name.startswith("AWS::"):
                logical_id, attribute = name.split(".", 1)
                return str(self.get_att(logical_id, attribute))
            return str(self.ref(name))

        return re.sub(r"\$\{([^}]+)\}", replace, text)

    def _fn_join(self, arg: JSONValue) -> str:
        delimiter, items = arg
        return str(delimiter).join(str(item) for item in self._resolve(items))

    def _fn_select(self, arg: JSONValue) -> JSONValue:
        index, items = self._resolve(arg)
        return items[int(index)]

    def _fn_split(self, arg: JSONValue) -> list[str]:
        delimiter, text = self._resolve(arg)
        return str(text).split(delimiter)

    def _fn_if(self, arg: JSONValue) -> JSONValue:
        name, when_true, when_false = arg
        return self._resolve(when_true if self.condition(name) else when_false)

    def _fn_find_in_map(self, arg: JSONValue) -> JSONValue:
        map_name, first, second = (self._resolve(part) for part in arg[:3])
        try:
            return self.template["Mappings"][map_name][first][second]
        except KeyError as exc:
            raise TemplateError(f"Fn::FindInMap {map_name}/{first}/{second} has no value") from exc

    def _fn_equals(self, arg: JSONValue) -> bool:
        left, right = self._resolve(arg)
        return str(left) == str(right)

    def _fn_not(self, arg: JSONValue) -> bool:
        return not self._resolve(arg)[0]

    def _fn_and(self, arg: JSONValue) -> bool:
        return all(self._resolve(arg))

    def _fn_or(self, arg: JSONValue) -> bool:
        return any(self._resolve(arg))

    def _fn_condition(self, arg: JSONValue) -> bool:
        return self.condition(arg)

    def _fn_get_azs(self, arg: JSONValue) -> list[str]:
        return [f"{self.pseudo['AWS::Region']}{zone}" for zone in "abc"]

    def _fn_base64(self, arg: JSONValue) -> str:
        import base64

        return base64.b64encode(str(self._resolve(arg)).encode()).decode()

    _FUNCTIONS: ClassVar[dict[str, Callable[[Resolver, JSONValue], JSONValue]]] = {
        "Ref": _fn_ref,
        "Fn::GetAtt": _fn_get_att,
        "Fn::Sub": _fn_sub,
        "Fn::Join": _fn_join,
        "Fn::Select": _fn_select,
        "Fn::Split": _fn_split,
        "Fn::If": _fn_if,
        "Fn::FindInMap": _fn_find_in_map,
        "Fn::Equals": _fn_equals,
        "Fn::Not": _fn_not,
        "Fn::And": _fn_and,
        "Fn::Or": _fn_or,
        "Condition": _fn_condition,
        "Fn::GetAZs": _fn_get_azs,
        "Fn::Base64": _fn_base64,
    }


def parameter_values(template: Mapping[str, JSONValue], overrides: Mapping[str, str]) -> dict[str, str]:
    """Every parameter's value: the override, else the default; a parameter with neither is an error."""
    values: dict[str, str] = {}
    for name, spec in template.get("Parameters", {}).items():
        if name in overrides:
            value = str(overrides[name])
        elif "Default" in spec:
            value = str(spec["Default"])
        else:
            raise TemplateError(f"parameter {name} has no default; pass it with --parameter {name}=VALUE")
        allowed = spec.get("AllowedValues")
        if allowed is not None and value not in [str(a) for a in allowed]:
            raise TemplateError(f"parameter {name}={value!r} is not one of {allowed}")
        _check_constraints(name, value, spec)
        values[name] = value
    unknown = set(overrides) - set(values)
    if unknown:
        raise TemplateError(f"unknown parameter(s): {', '.join(sorted(unknown))}")
    return values


def _check_constraints(name: str, value: str, spec: Mapping[str, JSONValue]) -> None:
    """CloudFormation's parameter constraints (it refuses the deploy): AllowedPattern matches the whole value,
    MinLength/MaxLength for strings, MinValue/MaxValue for numbers."""
    pattern = spec.get("AllowedPattern")
    if pattern is not None and re.fullmatch(str(pattern), value) is None:
        described = spec.get("ConstraintDescription") or f"must match pattern {pattern}"
        raise TemplateError(f"parameter {name}={value!r}: {described}")
    if spec.get("Type") == "Number":
        if re.fullmatch(r"-?[0-9]+(\.[0-9]+)?", value) is None:  # float() would take "nan", "1e1", " 8"
            raise TemplateError(f"parameter {name}={value!r} must be a number")
        number = float(value)
        low, high = spec.get("MinValue"), spec.get("MaxValue")
        if low is not None and number < float(low):
            raise TemplateError(f"parameter {name}={value!r} must be at least {low}")
        if high is not None and number > float(high):
            raise TemplateError(f"parameter {name}={value!r} must be at most {high}")
    shortest, longest = spec.get("MinLength"), spec.get("MaxLength")
    if shortest is not None and len(value) < int(shortest):
        raise TemplateError(f"parameter {name}={value!r} is shorter than {shortest} characters")
    if longest is not None and len(value) > int(longest):
        raise TemplateError(f"parameter {name}={value!r} is longer than {longest} characters")
