"""CreatePolicy refuses a condition value its operator cannot read (MalformedPolicyException,
through boto3), so such a document is never stored to be skipped later."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError


@pytest.mark.parametrize(
    ("condition", "named"),
    [
        ({"IpAddress": {"aws:SourceIp": "localhost"}}, "IpAddress aws:SourceIp"),
        ({"DateLessThan": {"aws:CurrentTime": "next tuesday"}}, "DateLessThan aws:CurrentTime"),
        ({"NumericLessThan": {"iot:Connection.Thing.Attributes[n]": "three"}}, "NumericLessThan"),
        ({"Null": {"iot:Connection.Thing.ThingName": "maybe"}}, "Null"),
    ],
)
def test_create_policy_refuses_a_value_its_operator_cannot_read(iot, unique, condition, named):
    # given a Deny whose condition value is not of its operator's type
    statement = {"Effect": "Deny", "Action": "iot:Publish", "Resource": "*", "Condition": condition}
    document = json.dumps({"Version": "2012-10-17", "Statement": [statement]})
    # when it is created
    with pytest.raises(ClientError) as raised:
        iot.create_policy(policyName=f"bad-value-{unique}-{len(named)}", policyDocument=document)
    # then AWS's error names the statement, the operator and the key
    error = raised.value.response["Error"]
    assert error["Code"] == "MalformedPolicyException"
    assert f"Statement 0: {named}" in error["Message"]
    assert "invalid value" in error["Message"]
