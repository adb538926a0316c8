"""Fixtures of the end-to-end tests: moto in server mode (the contract tests' own fixtures) and a
real local Kubernetes control plane (tests/e2e/k8s_cluster.py), started once per module."""

from __future__ import annotations

from tests.helpers.moto import aws_env, moto_server  # noqa: F401  (fixtures, re-exported)
