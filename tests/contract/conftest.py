"""Fixtures for the AWS adapter's contract tests: moto in server mode and a region pair in it
(tests/helpers/moto.py)."""

from tests.helpers.moto import aws_env, moto_pair, moto_server  # noqa: F401  (the fixtures)
