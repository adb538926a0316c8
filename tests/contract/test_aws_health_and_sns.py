"""The HealthProbe and Notifier ports in AWS (runbooks/adapters/aws/health.py, sns.py) on moto."""

from __future__ import annotations

import copy
import json
import socket

from contract import outputs as contract
from runbooks.adapters import aws
from tests.contract.aws_helpers import (
    ports,
)
from tests.helpers.moto import P, S, closed_port


def test_notifier_publishes_without_secrets_dr_topic_first(moto_pair):
    sqs, sns = moto_pair.client("sqs", S), moto_pair.client("sns", S)
    queue = sqs.create_queue(QueueName="ops")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=moto_pair.outputs.secondary.alarm_topic_arn, Protocol="sqs", Endpoint=arn)
    p = ports(moto_pair)
    assert [r for r, _ in p.notifier.topics()] == [S, P]
    p.notifier.notify("failover started\n", "connecting with password=hunter2-moto to dr-payments")
    body = json.loads(sqs.receive_message(QueueUrl=queue)["Messages"][0]["Body"])
    assert body["Subject"] == "failover started " and "hunter2" not in body["Message"]


def test_health_region_and_database(moto_pair):
    doc = copy.deepcopy(moto_pair.doc)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    doc["regions"][P]["databases"]["payments"].update(endpoint="127.0.0.1", port=listener.getsockname()[1])
    doc["regions"][S]["databases"]["payments"].update(endpoint="127.0.0.1", port=closed_port())
    try:
        p = aws.aws_ports(contract.from_dict(doc), moto_pair.clock, moto_pair.session)
        assert p.health.region(P).healthy and "RDS API answers" in p.health.region(P).sentence
        assert p.health.database(P, "payments").healthy
        assert not p.health.database(S, "payments").healthy
    finally:
        listener.close()
