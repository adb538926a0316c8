"""The AWS Streaming adapter for MirrorMaker 2 on MSK Connect (runbooks/adapters/aws_mm2.py), on
botocore's Stubber with the real kafkaconnect and CloudWatch models (moto has no MSK Connect)."""

from __future__ import annotations

import pytest

from runbooks.adapters.aws import AwsCallFailed
from runbooks.adapters.aws.msk_connect import MirrorMaker2Streaming
from runbooks.core.errors import StepFailed
from tests.contract.aws_helpers import SRC_CLUSTER, StreamStubs as Stubs, metric_data, streams_document
from tests.helpers.moto import P, S

ACCOUNT = "123456789012"
ARNS = {kind: f"arn:aws:kafkaconnect:{S}:{ACCOUNT}:connector/regionpair-dr-mm2-{kind}/{kind[:3]}-2"
        for kind in ("source", "checkpoint", "heartbeat")}
CHECKPOINTS = f"{P}.checkpoints.internal"


def mm2_document(connectors: dict | None = None) -> dict:
    doc = streams_document()
    dr = doc["regions"][S]["streaming"]
    dr["replicator_arn"] = None
    dr["mirrormaker2"] = {"checkpoints_topic": CHECKPOINTS, "connector_arns": dict(ARNS if connectors is None
                                                                                   else connectors)}
    return doc


def connector(kind: str, state: str = "RUNNING", **config) -> dict:
    return {"connectorArn": ARNS[kind], "connectorName": f"regionpair-dr-mm2-{kind}", "connectorState": state,
            "connectorConfiguration": {"groups": ".*", "sync.group.offsets.enabled": "true",
                                       "sync.group.offsets.interval.seconds": "1", **config}}


def port(s: Stubs) -> MirrorMaker2Streaming:
    return MirrorMaker2Streaming(s.outputs, s.clients, s.clock)


def test_the_ports_pick_this_adapter_when_the_outputs_declare_mirrormaker2():
    assert isinstance(Stubs(mm2_document()).ports().streaming, MirrorMaker2Streaming)
    assert not isinstance(Stubs().ports().streaming, MirrorMaker2Streaming)


def test_flow_reads_the_source_connector_and_its_tasks_and_says_the_lag_is_unknown():
    s = Stubs(mm2_document())
    s.stub("kafkaconnect", S).add_response("describe_connector", connector("source"), {"connectorArn": ARNS["source"]})
    s.stub("cloudwatch", S).add_response("get_metric_data", metric_data(errored=[(90, 0.0)], tasks=[(90, 1.0)]))
    s.stub("kafka", P).add_response("describe_cluster_v2", {"ClusterInfo": {"State": "ACTIVE"}},
                                     {"ClusterArn": SRC_CLUSTER})
    f = port(s).flow()
    assert (f.source, f.target, f.running, f.source_reachable) == (P, S, True, True)
    assert (f.lag_records, f.lag_seconds) == (None, None)
    assert "lag unknown" in f.detail and "1 running task(s)" in f.detail
    s.done()


def test_a_connector_with_an_errored_task_is_not_a_running_flow():
    s = Stubs(mm2_document())
    s.stub("kafkaconnect", S).add_response("describe_connector", connector("source"), {"connectorArn": ARNS["source"]})
    s.stub("cloudwatch", S).add_response("get_metric_data", metric_data(errored=[(60, 1.0)], tasks=[(60, 0.0)]))
    s.stub("kafka", P).add_response("describe_cluster_v2", {"ClusterInfo": {"State": "ACTIVE"}},
                                     {"ClusterArn": SRC_CLUSTER})
    f = port(s).flow()
    assert not f.running and "1 task(s) errored" in f.detail


def test_stop_deletes_the_source_then_the_heartbeat_connector_and_a_rerun_finds_them_gone():
    s = Stubs(mm2_document())
    kc = s.stub("kafkaconnect", S)
    for kind in ("source", "heartbeat"):
        kc.add_response("describe_connector", connector(kind), {"connectorArn": ARNS[kind]})
        kc.add_response("delete_connector", {"connectorArn": ARNS[kind], "connectorState": "DELETING"},
                        {"connectorArn": ARNS[kind]})
    said = port(s).stop_flow()
    assert "source connector regionpair-dr-mm2-source deleted" in said and "heartbeat connector" in said
    assert "checkpoint connector stays" in said
    s.done()
    # rerun after a crash: one already DELETING, the other gone
    s = Stubs(mm2_document())
    kc = s.stub("kafkaconnect", S)
    kc.add_response("describe_connector", connector("source", "DELETING"), {"connectorArn": ARNS["source"]})
    kc.add_client_error("describe_connector", "NotFoundException", http_status_code=404,
                        expected_params={"connectorArn": ARNS["heartbeat"]})
    said = port(s).stop_flow()
    assert said.count("already deleted") == 2
    s.done()


def test_a_refused_delete_names_the_action_and_the_connector():
    s = Stubs(mm2_document())
    kc = s.stub("kafkaconnect", S)
    kc.add_response("describe_connector", connector("source"), {"connectorArn": ARNS["source"]})
    kc.add_client_error("delete_connector", "AccessDeniedException", http_status_code=403)
    with pytest.raises(AwsCallFailed) as refused:
        port(s).stop_flow()
    assert "regionpair-dr-mm2-source" in str(refused.value) and "DeleteConnector was denied" in str(refused.value)


def test_group_offsets_are_confirmed_from_the_checkpoint_connector_configuration():
    s = Stubs(mm2_document())
    s.stub("kafkaconnect", S).add_response("describe_connector", connector("checkpoint", groups="ledger,orders-.*"),
                                           {"connectorArn": ARNS["checkpoint"]})
    out = {g.group: g for g in port(s).ensure_group_offsets(P, S, ["ledger", "audit"])}
    assert out["ledger"].translated and CHECKPOINTS in out["ledger"].method
    assert not out["audit"].translated and "do not cover audit" in out["audit"].method
    s = Stubs(mm2_document())
    s.stub("kafkaconnect", S).add_response("describe_connector",
                                           connector("checkpoint", **{"sync.group.offsets.enabled": "false"}),
                                           {"connectorArn": ARNS["checkpoint"]})
    [ledger] = port(s).ensure_group_offsets(P, S, ["ledger"])
    assert not ledger.translated and "does not synchronise" in ledger.method


def test_promoted_outputs_say_nothing_copies_and_start_tells_the_stack_to_recreate():
    s = Stubs(mm2_document(connectors={}))
    f = port(s).flow()
    assert not f.running and "not declared" in f.detail
    with pytest.raises(StepFailed, match="the dr stack owns them"):
        port(s).start_flow(P, S)
