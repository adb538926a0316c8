"""The Kafka topic backup's S3 rule (the backups bucket's lifecycle, one rule per backed-up topic),
as a CrossGuard policy. The backup's MSK Connect resources are held to the same policies as every
other connector's (``policy/mskconnect.py``). Imported as ``policy.kafka_backup`` (tests and policy/__main__.py alike); ``rules.py`` puts its
``POLICIES`` in the pack's list.
"""

from __future__ import annotations

from typing import Any

from . import base

Resource = base.Resource
as_list = base.as_list

LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
MAX_LIFECYCLE_RULES = 1000

DOC_LIFECYCLE = 'Amazon S3 API Reference, "LifecycleConfiguration" ("You can add as many as 1000 rules")'
DOC_RULE_ID = 'Amazon S3 API Reference, "LifecycleRule" (ID: "Unique identifier for the rule", at most 255 characters)'


def check_lifecycle_rules(r: Resource) -> list[str]:
    if r.type != LIFECYCLE:
        return []
    rules_ = as_list(r.props.get("rules"))
    if len(rules_) > MAX_LIFECYCLE_RULES:
        return [f"{r.label}: {len(rules_)} lifecycle rules; S3 takes at most {MAX_LIFECYCLE_RULES} per bucket "
                f"({DOC_LIFECYCLE}). Fix: fewer rules (back up fewer topics, or group them under one prefix)."]
    ids = [x.get("id") for x in rules_ if isinstance(x, dict) and isinstance(x.get("id"), str)]
    problems = []
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        problems.append(f"{r.label}: lifecycle rule id(s) {', '.join(dup)} used twice ({DOC_RULE_ID}). Fix: unique ids.")
    long_ = [i for i in ids if len(i) > 255]
    if long_:
        problems.append(f"{r.label}: lifecycle rule id {long_[0][:40]}… has {len(long_[0])} characters ({DOC_RULE_ID}). "
                        "Fix: at most 255.")
    return problems


POLICIES: list[Any] = [
    base.resource_policy(
        "s3-lifecycle-rule-limit",
        f"A bucket's lifecycle configuration has at most {MAX_LIFECYCLE_RULES} rules ({DOC_LIFECYCLE}), each id once "
        f"and at most 255 characters ({DOC_RULE_ID}).",
        check_lifecycle_rules),
]
