"""Fixture files and helpers of the fault-injection, hostile-input and load tests."""
