"""Sample outputs documents for tests: a well-formed region pair that tests then break."""

from __future__ import annotations

import copy
from typing import Any


def _region(name: str, role: str, stack: str, db_role: str, n_databases: int = 1) -> dict[str, Any]:
    dbs = {}
    for i in range(n_databases):
        logical = "payments" if i == 0 else f"payments-{i}"
        dbs[logical] = {
            "identifier": f"{stack}-{logical}",
            "arn": f"arn:aws:rds:{name}:123456789012:db:{stack}-{logical}",
            "endpoint": f"{stack}-{logical}.abc.{name}.rds.amazonaws.com",
            "port": 5432,
            "role": db_role,
            "db_name": "app",
            "username": "app_admin",
            "secret_arn": f"arn:aws:secretsmanager:{name}:123456789012:secret:rds!{stack}-{logical}",
            "security_group_id": f"sg-{stack}{i}",
            "source_arn": None if db_role == "primary" else f"arn:aws:rds:us-east-1:123456789012:db:prod-{logical}",
        }
    return {
        "role": role,
        "stack": stack,
        "databases": dbs,
        "dns": {"failover": role.upper(), "set_identifier": f"{stack}-{name}",
                "health_check_id": "hc-1234" if role == "primary" else None},
        "streaming": {"cluster_arn": f"arn:aws:kafka:{name}:123456789012:cluster/{stack}/x",
                      "bootstrap_brokers": f"b-1.{stack}.kafka.{name}.amazonaws.com:9098",
                      "replicator_arn": None if role == "primary" else
                      f"arn:aws:kafka:{name}:123456789012:replicator/{stack}/y",
                      "bootstrap_parameter": "/regionpair/payments/kafka-bootstrap"},
        "storage": {"data_bucket": f"regionpair-{stack}-data", "data_bucket_arn": f"arn:aws:s3:::regionpair-{stack}-data",
                    "backups_bucket": f"regionpair-{stack}-backups"},
        "kms_key_arn": f"arn:aws:kms:{name}:123456789012:key/{stack}",
        "runbook_role_arn": "arn:aws:iam::123456789012:role/regionpair-runbooks",
        "alarm_topic_arn": f"arn:aws:sns:{name}:123456789012:{stack}-alarms",
        "alarms": [f"{stack}-replica-lag"],
    }


def pair_document(n_databases: int = 1) -> dict[str, Any]:
    """What the dr stack exports: both regions."""
    records = {"payments" if i == 0 else f"payments-{i}": ("payments" if i == 0 else f"payments-{i}") + ".db.example.internal"
               for i in range(n_databases)}
    return {
        "schema_version": 1,
        "project": "regionpair",
        "stack": "dr",
        "target": "aws",
        "sandbox_dir": None,
        "objectives": {"rto_seconds": 900, "rpo_seconds": 300},
        "rto_budget": {"detection_seconds": 90, "dns_ttl_seconds": 60, "promotion_seconds": 300,
                       "total_seconds": 450, "within_objective": True},
        "dns": {"zone_id": "Z123", "zone_name": "example.internal", "ttl_seconds": 60,
                "strategy": "health-check-inversion", "resolver": None, "records": records},
        "regions": {
            "us-east-1": _region("us-east-1", "primary", "prod", "primary", n_databases),
            "us-west-2": _region("us-west-2", "secondary", "dr", "replica", n_databases),
        },
    }


def prod_document() -> dict[str, Any]:
    """What the prod stack exports: its own region only."""
    doc = copy.deepcopy(pair_document())
    doc["stack"] = "prod"
    del doc["regions"]["us-west-2"]
    return doc
