"""Private, encrypted, TLS-only storage and messaging."""

from __future__ import annotations

from typing import Any

from tests.unit.template.support import (
    of_type,
    statements_of,
)


# ----------------------------------------------------------------------------------------------------------- security
def test_buckets_are_private_encrypted_and_tls_only(resources: dict[str, Any]) -> None:
    policies = {
        r["Properties"]["Bucket"]["Ref"]: r["Properties"]["PolicyDocument"]
        for r in of_type({"Resources": resources}, "AWS::S3::BucketPolicy").values()
    }
    for name, bucket in of_type({"Resources": resources}, "AWS::S3::Bucket").items():
        properties = bucket["Properties"]
        (rule,) = properties["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in {"AES256", "aws:kms"}
        assert properties["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }
        assert properties["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
        denies = [
            s
            for s in statements_of(policies[name])
            if s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        ]
        assert len(denies) == 1, name
        assert denies[0]["Principal"] == "*"
        assert denies[0]["Action"] == "s3:*"
        assert denies[0]["Resource"] == [{"Fn::GetAtt": [name, "Arn"]}, {"Fn::Sub": f"${{{name}.Arn}}/*"}]
    input_bucket = resources["InputBucket"]["Properties"]
    assert input_bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    rules = input_bucket["LifecycleConfiguration"]["Rules"]
    assert any(r["Status"] == "Enabled" and "NoncurrentVersionExpiration" in r for r in rules)


def test_topics_queues_and_table_are_encrypted(resources: dict[str, Any]) -> None:
    cfn = {"Resources": resources}
    topics = of_type(cfn, "AWS::SNS::Topic")
    assert set(topics) == {"SuccessTopic", "ErrorTopic"}
    for topic in topics.values():
        assert topic["Properties"]["KmsMasterKeyId"]
    queues = of_type(cfn, "AWS::SQS::Queue")
    assert set(queues) == {"DeadLetterQueue", "ResultsQueue"}
    for queue in queues.values():
        assert queue["Properties"].get("SqsManagedSseEnabled") is True or queue["Properties"].get("KmsMasterKeyId")
    for name in queues:
        (policy,) = [
            p for p in of_type(cfn, "AWS::SQS::QueuePolicy").values() if p["Properties"]["Queues"] == [{"Ref": name}]
        ]
        assert any(
            s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
            for s in statements_of(policy["Properties"]["PolicyDocument"])
        ), name
    table = resources["JobsTable"]["Properties"]
    assert table["SSESpecification"]["SSEEnabled"] is True
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert table["KeySchema"] == [{"AttributeName": "inferenceId", "KeyType": "HASH"}]
    assert table["AttributeDefinitions"] == [{"AttributeName": "inferenceId", "AttributeType": "S"}]
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expiresAt", "Enabled": True}
