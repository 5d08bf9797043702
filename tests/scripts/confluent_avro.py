"""Serializes transactions with confluent-kafka's own AvroSerializer, for the Avro wire-format test.

Reads the two schema versions (argv[1], argv[2]: Avro JSON) and transactions as JSON lines on stdin;
the first half is written with version 1, the rest with version 2 and channel "app", each as Confluent's
serializer frames it (schema ids from its in-process mock registry). Prints one JSON line with the
schemas by id, then one hex value per transaction, in order.
"""
import json
import sys

from confluent_kafka.schema_registry._sync.mock_schema_registry_client import (
    MockSchemaRegistryClient,
)
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

registry = MockSchemaRegistryClient({"url": "mock://weir-test"})
versions = [AvroSerializer(registry, schema) for schema in sys.argv[1:3]]
transactions = [json.loads(line) for line in sys.stdin if line.strip()]
context = SerializationContext("tx", MessageField.VALUE)
values = []
for i, tx in enumerate(transactions):
    if i < len(transactions) // 2:
        values.append(versions[0](tx, context))
    else:
        values.append(versions[1](dict(tx, channel="app"), context))
schemas = {}
for number in registry.get_versions("tx-value"):
    version = registry.get_version("tx-value", number)
    schemas[version.schema_id] = version.schema.schema_str
print(json.dumps({"schemas": schemas}))
for value in values:
    print(value.hex())
