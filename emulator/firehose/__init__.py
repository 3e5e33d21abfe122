"""Kinesis Data Firehose data path (component `emulator.firehose`, see service.py)."""
