"""DynamoDB calls as AWS authorizes them (Service Authorization Reference, "Actions, resources, and condition keys
for Amazon DynamoDB"; "Using IAM with DynamoDB transactions").

Resources are ``arn:aws:dynamodb:REGION:ACCOUNT:table/NAME`` (``…/index/INDEX`` for a Query or Scan of an index).
BatchGetItem and BatchWriteItem are their own actions, checked on each table named; TransactGetItems and
TransactWriteItems are not actions: each item is checked as the single-item action it performs. Fine-grained condition
keys (dynamodb:LeadingKeys, dynamodb:Attributes, …) are not computed."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from asyncinfer.local.iam.check_sets import unique
from asyncinfer.local.iam.checks import Check, UnmappedRequest
from asyncinfer.local.iam.protocol_bodies import text

# Operations on one table named by TableName (the action has the operation's name).
_TABLE_OPERATIONS = frozenset(
    {
        "GetItem", "PutItem", "UpdateItem", "DeleteItem", "DescribeTable", "CreateTable", "DeleteTable",
        "UpdateTable", "DescribeTimeToLive", "UpdateTimeToLive", "DescribeContinuousBackups",
        "UpdateContinuousBackups",
    }
)  # fmt: skip
_INDEX_OPERATIONS = frozenset({"Query", "Scan"})
_ARN_OPERATIONS = frozenset({"ListTagsOfResource", "TagResource", "UntagResource"})
_ACCOUNT_OPERATIONS = frozenset({"ListTables", "DescribeLimits", "DescribeEndpoints", "ListBackups"})
_TRANSACT_WRITE = {
    "Put": "dynamodb:PutItem",
    "Update": "dynamodb:UpdateItem",
    "Delete": "dynamodb:DeleteItem",
    "ConditionCheck": "dynamodb:ConditionCheckItem",
}


def table_arn(table: str, region: str, account: str) -> str:
    """A table's ARN; a name that already is an ARN (DynamoDB accepts both) is kept."""
    return table if table.startswith("arn:") else f"arn:aws:dynamodb:{region}:{account}:table/{table}"


def checks(operation: str, params: Mapping[str, object], region: str, account: str) -> tuple[Check, ...]:
    """The checks of one DynamoDB call; UnmappedRequest for an operation not mapped or a request missing a table."""
    action = f"dynamodb:{operation}"
    if operation in _TABLE_OPERATIONS:
        return (Check(action, table_arn(text(params, "TableName", action), region, account)),)
    if operation in _INDEX_OPERATIONS:
        arn = table_arn(text(params, "TableName", action), region, account)
        index = params.get("IndexName")
        return (Check(action, f"{arn}/index/{index}" if isinstance(index, str) and index else arn),)
    if operation in _ARN_OPERATIONS:
        return (Check(action, text(params, "ResourceArn", action)),)
    if operation in _ACCOUNT_OPERATIONS:
        return (Check(action, "*"),)
    if operation in {"BatchGetItem", "BatchWriteItem"}:
        return unique(Check(action, table_arn(table, region, account)) for table in _tables(params, action))
    if operation == "TransactGetItems":
        return unique(_transact_checks(params, {"Get": "dynamodb:GetItem"}, action, region, account))
    if operation == "TransactWriteItems":
        return unique(_transact_checks(params, _TRANSACT_WRITE, action, region, account))
    raise UnmappedRequest(f"{action} is not mapped to IAM checks")


def _tables(params: Mapping[str, object], action: str) -> list[str]:
    items = params.get("RequestItems")
    if not isinstance(items, Mapping) or not items:
        raise UnmappedRequest(f"{action} without RequestItems")
    return [str(table) for table in items]


def _transact_checks(
    params: Mapping[str, object], actions: Mapping[str, str], operation: str, region: str, account: str
) -> Iterable[Check]:
    items = params.get("TransactItems")
    if not isinstance(items, list) or not items:
        raise UnmappedRequest(f"{operation} without TransactItems")
    for item in items:
        kinds = [kind for kind in actions if isinstance(item, Mapping) and isinstance(item.get(kind), Mapping)]
        if len(kinds) != 1:
            raise UnmappedRequest(f"{operation}: an item is not exactly one of {sorted(actions)}")
        request = item[kinds[0]]
        yield Check(actions[kinds[0]], table_arn(text(request, "TableName", operation), region, account))
