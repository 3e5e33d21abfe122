"""AWS::Glue::Database and AWS::Glue::Table in a stack (moto has no CloudFormation model for
them): created through Glue's API, Ref gives their names, an update makes a new table version
(which Firehose's "LATEST" reads), and deleting the stack removes both."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

WAIT = {"Delay": 1, "MaxAttempts": 60}
COLUMNS = [{"Name": "equipment_id", "Type": "string"}, {"Name": "temperature_c", "Type": "double"}]


def _template(columns: list[dict]) -> str:
    table_input = {
        "Name": "telemetry",
        "TableType": "EXTERNAL_TABLE",
        # Partition projection: Athena computes the partitions, no crawler needed.
        "Parameters": {"projection.enabled": "true", "projection.dt.type": "date"},
        "PartitionKeys": [{"Name": "dt", "Type": "string"}],
        "StorageDescriptor": {"Columns": columns, "Location": "s3://somewhere/data/"},
    }
    return json.dumps(
        {
            "Resources": {
                "Database": {
                    "Type": "AWS::Glue::Database",
                    "Properties": {
                        "CatalogId": {"Ref": "AWS::AccountId"},
                        "DatabaseInput": {"Name": {"Fn::Sub": "${AWS::StackName}_db"}},
                    },
                },
                "Table": {
                    "Type": "AWS::Glue::Table",
                    "Properties": {
                        "CatalogId": {"Ref": "AWS::AccountId"},
                        "DatabaseName": {"Ref": "Database"},
                        "TableInput": table_input,
                    },
                },
            },
            "Outputs": {
                "DatabaseName": {"Value": {"Ref": "Database"}},
                "TableName": {"Value": {"Ref": "Table"}},
            },
        }
    )


def test_a_stack_creates_updates_and_deletes_a_glue_table(aws, unique):
    cfn, glue = aws("cloudformation"), aws("glue")
    stack = f"glue{unique}"
    # Given a stack with a database and a partition-projected table
    cfn.create_stack(StackName=stack, TemplateBody=_template(COLUMNS))
    cfn.get_waiter("stack_create_complete").wait(StackName=stack, WaiterConfig=WAIT)
    outputs = {
        o["OutputKey"]: o["OutputValue"]
        for o in cfn.describe_stacks(StackName=stack)["Stacks"][0]["Outputs"]
    }
    # Then Ref gives the names and Glue holds the table as the template wrote it
    assert outputs == {"DatabaseName": f"{stack}_db", "TableName": "telemetry"}
    table = glue.get_table(DatabaseName=f"{stack}_db", Name="telemetry")["Table"]
    assert table["StorageDescriptor"]["Columns"] == COLUMNS
    assert table["Parameters"]["projection.enabled"] == "true"
    assert table["PartitionKeys"] == [{"Name": "dt", "Type": "string"}]

    # When a column is added, the table gets a second version
    more = [*COLUMNS, {"Name": "pressure_kpa", "Type": "double"}]
    cfn.update_stack(StackName=stack, TemplateBody=_template(more))
    cfn.get_waiter("stack_update_complete").wait(StackName=stack, WaiterConfig=WAIT)
    versions = glue.get_table_versions(DatabaseName=f"{stack}_db", TableName="telemetry")
    assert sorted(v["VersionId"] for v in versions["TableVersions"]) == ["1", "2"]
    latest = glue.get_table(DatabaseName=f"{stack}_db", Name="telemetry")["Table"]
    assert latest["StorageDescriptor"]["Columns"] == more

    # When the stack is deleted, so are the table and the database
    cfn.delete_stack(StackName=stack)
    cfn.get_waiter("stack_delete_complete").wait(StackName=stack, WaiterConfig=WAIT)
    with pytest.raises(ClientError) as raised:
        glue.get_database(Name=f"{stack}_db")
    assert raised.value.response["Error"]["Code"] == "EntityNotFoundException"
