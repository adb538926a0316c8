import copy
import json
import subprocess

import pytest

from contract import outputs
from contract.outputs import OutputsError
from tests.samples import pair_document, prod_document


def test_pair_round_trips_through_json():
    doc = outputs.from_dict(pair_document())
    again = outputs.from_dict(json.loads(doc.to_json()))
    assert again == doc
    assert doc.primary.name == "us-east-1"
    assert doc.secondary.databases["payments"].role == "replica"
    assert doc.require_pair() is doc


@pytest.mark.parametrize("mutate, path", [
    (lambda d: d.pop("schema_version"), "schema_version"),
    (lambda d: d.update(schema_version=2), "schema_version"),
    (lambda d: d.update(target="gcp"), "target"),
    (lambda d: d["objectives"].pop("rto_seconds"), "objectives.rto_seconds"),
    (lambda d: d["objectives"].update(rpo_seconds="5m"), "objectives.rpo_seconds"),
    (lambda d: d["dns"].update(strategy="round-robin"), "dns.strategy"),
    (lambda d: d["dns"].update(records={}), "dns.records"),
    (lambda d: d["regions"]["us-east-1"]["databases"]["payments"].update(port=0),
     "regions.us-east-1.databases.payments.port"),
    (lambda d: d["regions"]["us-east-1"]["databases"]["payments"].pop("endpoint"),
     "regions.us-east-1.databases.payments.endpoint"),
    (lambda d: d["regions"]["us-west-2"].update(role="primary"), "regions.us-west-2.dns.failover"),
    (lambda d: d["regions"]["us-west-2"]["dns"].update(failover="PRIMARY"), "regions.us-west-2.dns.failover"),
    (lambda d: d["regions"]["us-east-1"]["databases"]["payments"].update(master_password="hunter2"),
     "regions.us-east-1.databases.payments.master_password"),
    (lambda d: d.update(target="sandbox"), "sandbox_dir"),
])
def test_malformed_documents_name_the_field(mutate, path):
    doc = pair_document()
    mutate(doc)
    with pytest.raises(OutputsError) as err:
        outputs.from_dict(doc)
    assert err.value.path == path, str(err.value)
    assert path in str(err.value)


def test_secret_is_refused_and_not_echoed():
    doc = pair_document()
    doc["regions"]["us-east-1"]["databases"]["payments"]["password"] = "s3cr3t-value"
    with pytest.raises(OutputsError) as err:
        outputs.from_dict(doc)
    assert "s3cr3t-value" not in str(err.value)


def test_prod_alone_is_valid_but_not_a_pair():
    prod = outputs.from_dict(prod_document())
    with pytest.raises(OutputsError, match="secondary"):
        prod.require_pair()


def test_merge_prod_and_dr_prefers_each_regions_owner():
    prod_doc = prod_document()
    prod_doc["regions"]["us-east-1"]["alarms"] = ["prod-owned-alarm"]
    merged = outputs.merge(outputs.from_dict(prod_doc), outputs.from_dict(pair_document()))
    assert set(merged.regions) == {"us-east-1", "us-west-2"}
    assert merged.primary.alarms == ("prod-owned-alarm",)
    merged.require_pair()


def test_replica_missing_for_a_primary_database_is_refused():
    doc = pair_document()
    doc["regions"]["us-east-1"]["databases"]["ledger"] = copy.deepcopy(doc["regions"]["us-east-1"]["databases"]["payments"])
    doc["dns"]["records"]["ledger"] = "ledger.db.example.internal"
    with pytest.raises(OutputsError, match="ledger"):
        outputs.from_dict(doc).require_pair()


def test_load_file_errors(tmp_path):
    with pytest.raises(OutputsError, match="does not exist"):
        outputs.load_file(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(OutputsError, match="not JSON"):
        outputs.load_file(bad)


def test_load_pair_through_the_cli_runner():
    docs = {"prod": prod_document(), "dr": pair_document()}
    calls = []

    def runner(args, **kwargs):
        calls.append(args)
        stack = args[args.index("--stack") + 1]
        if stack not in docs:
            return subprocess.CompletedProcess(args, 255, "", f"error: no stack named '{stack}' found\n")
        return subprocess.CompletedProcess(args, 0, json.dumps(docs[stack]), "")

    pair = outputs.load_pair(stacks=["prod", "dr"], runner=runner)
    assert pair.secondary.stack == "dr"
    assert calls[0][:4] == ["pulumi", "stack", "output", "--json"]
    with pytest.raises(OutputsError, match="no stack named 'staging'"):
        outputs.load_pair(stacks=["staging"], runner=runner)


# ---- the optional kubernetes section (how the runbooks reach a region's cluster) ----------------

def with_clusters(doc: dict) -> dict:
    for name, region in doc["regions"].items():
        region["kubernetes"] = {"context": f"arn:aws:eks:{name}:123456789012:cluster/payments",
                                "namespaces": ["payments", "checkout"], "configmap": "regionpair-active-endpoints"}
    return doc


def test_a_document_without_kubernetes_still_loads_and_one_with_it_round_trips():
    assert outputs.from_dict(pair_document()).secondary.kubernetes is None  # schema_version 1, as before
    doc = outputs.from_dict(with_clusters(pair_document()))
    k = doc.secondary.kubernetes
    assert (k.context, k.namespaces, k.configmap) == ("arn:aws:eks:us-west-2:123456789012:cluster/payments",
                                                      ("payments", "checkout"), "regionpair-active-endpoints")
    assert outputs.from_dict(json.loads(doc.to_json())) == doc
    raw = with_clusters(pair_document())
    del raw["regions"]["us-east-1"]["kubernetes"]["configmap"]
    assert outputs.from_dict(raw).primary.kubernetes.configmap == "regionpair-active-endpoints"


def test_restart_deployments_are_optional_and_round_trip():
    assert outputs.from_dict(with_clusters(pair_document())).secondary.kubernetes.restart_deployments == {}
    raw = with_clusters(pair_document())
    raw["regions"]["us-west-2"]["kubernetes"]["restart_deployments"] = {"checkout": ["checkout-web", "checkout.jobs"]}
    doc = outputs.from_dict(raw)
    assert doc.secondary.kubernetes.restart_deployments == {"checkout": ("checkout-web", "checkout.jobs")}
    assert doc.primary.kubernetes.restart_deployments == {}
    assert outputs.from_dict(json.loads(doc.to_json())) == doc


@pytest.mark.parametrize("mutate, path", [
    (lambda k: k.pop("context"), "regions.us-west-2.kubernetes.context"),
    (lambda k: k.update(context="my cluster"), "regions.us-west-2.kubernetes.context"),
    (lambda k: k.update(namespaces=[]), "regions.us-west-2.kubernetes.namespaces"),
    (lambda k: k.update(namespaces="payments"), "regions.us-west-2.kubernetes.namespaces"),
    (lambda k: k.update(namespaces=["payments", "Checkout"]), "regions.us-west-2.kubernetes.namespaces[1]"),
    (lambda k: k.update(namespaces=["payments", "payments"]), "regions.us-west-2.kubernetes.namespaces"),
    (lambda k: k.update(configmap="Active Endpoints"), "regions.us-west-2.kubernetes.configmap"),
    (lambda k: k.update(kubeconfig="apiVersion: v1"), "regions.us-west-2.kubernetes.kubeconfig"),
    (lambda k: k.update(restart_deployments=["api"]), "regions.us-west-2.kubernetes.restart_deployments"),
    (lambda k: k.update(restart_deployments={"billing": ["api"]}),
     "regions.us-west-2.kubernetes.restart_deployments.billing"),
    (lambda k: k.update(restart_deployments={"payments": []}), "regions.us-west-2.kubernetes.restart_deployments.payments"),
    (lambda k: k.update(restart_deployments={"payments": "api"}),
     "regions.us-west-2.kubernetes.restart_deployments.payments"),
    (lambda k: k.update(restart_deployments={"payments": ["api", "API"]}),
     "regions.us-west-2.kubernetes.restart_deployments.payments[1]"),
    (lambda k: k.update(restart_deployments={"payments": ["api", "api"]}),
     "regions.us-west-2.kubernetes.restart_deployments.payments"),
])
def test_a_malformed_kubernetes_section_names_the_field(mutate, path):
    doc = with_clusters(pair_document())
    mutate(doc["regions"]["us-west-2"]["kubernetes"])
    with pytest.raises(OutputsError) as err:
        outputs.from_dict(doc)
    assert err.value.path == path, str(err.value)
    assert "apiVersion" not in str(err.value)  # a kubeconfig is never echoed


def test_the_contract_values_of_a_region_come_from_its_outputs():
    from contract import active_endpoints as endpoints
    doc = outputs.from_dict(pair_document(n_databases=2))
    dr = doc.secondary
    assert endpoints.active_values(dr, ["payments-1"]) == {
        "ACTIVE_REGION": "us-west-2", "DB_PAYMENTS_1_HOST": dr.databases["payments-1"].endpoint,
        "DB_PAYMENTS_1_PORT": "5432", "KAFKA_BOOTSTRAP_SERVERS": dr.streaming.bootstrap_brokers,
        "DATA_BUCKET": dr.storage.data_bucket}
    assert endpoints.initial_data(doc.primary)["REGIONPAIR_CONTRACT_VERSION"] == "1"
    assert sorted(endpoints.initial_data(doc.primary)) == sorted(endpoints.endpoint_keys(["payments", "payments-1"]))
    assert endpoints.contract_data({"ACTIVE_REGION": "x", "DB_LEDGER_HOST": "h", "OTHER_TEAMS_KEY": "y"}) == {
        "ACTIVE_REGION": "x", "DB_LEDGER_HOST": "h"}


# ---- the dr region's S3 Batch Replication settings (the failback's seeding of home) ------------

BATCH = {"role_arn": "arn:aws:iam::123456789012:role/data-batch-replication-role-1a2b",
         "report_bucket": "regionpair-dr-backups", "report_prefix": "regionpair/batch-replication"}


def with_batch(doc: dict) -> dict:
    doc["regions"]["us-west-2"]["storage"]["batch_replication"] = dict(BATCH)
    return doc


def test_batch_replication_is_optional_and_round_trips():
    assert outputs.from_dict(pair_document()).secondary.storage.batch_replication is None  # stacks from before
    doc = outputs.from_dict(with_batch(pair_document()))
    b = doc.secondary.storage.batch_replication
    assert (b.role_arn, b.report_bucket, b.report_prefix) == tuple(BATCH.values())
    assert outputs.from_dict(json.loads(doc.to_json())) == doc


@pytest.mark.parametrize("mutate, path", [
    (lambda b: b.pop("role_arn"), "regions.us-west-2.storage.batch_replication.role_arn"),
    (lambda b: b.update(role_arn="data-batch-replication"), "regions.us-west-2.storage.batch_replication.role_arn"),
    (lambda b: b.update(role_arn="arn:aws:iam::123456789012:user/ops"),
     "regions.us-west-2.storage.batch_replication.role_arn"),
    (lambda b: b.update(report_bucket="arn:aws:s3:::regionpair-dr-backups"),
     "regions.us-west-2.storage.batch_replication.report_bucket"),
    (lambda b: b.pop("report_prefix"), "regions.us-west-2.storage.batch_replication.report_prefix"),
    (lambda b: b.update(report_prefix="/reports/"), "regions.us-west-2.storage.batch_replication.report_prefix"),
    (lambda b: b.update(report_prefix="reports/*"), "regions.us-west-2.storage.batch_replication.report_prefix"),
])
def test_a_malformed_batch_replication_section_names_the_field(mutate, path):
    doc = with_batch(pair_document())
    mutate(doc["regions"]["us-west-2"]["storage"]["batch_replication"])
    with pytest.raises(OutputsError) as err:
        outputs.from_dict(doc)
    assert err.value.path == path, str(err.value)
    assert path in str(err.value)


def test_the_policy_pack_names_the_contracts_components():
    """The pack cannot import contract/ (it runs with sys.path[0] = policy/), so it repeats the
    components with objectives of their own: the two lists must stay the same."""
    from policy import objectives
    from stacks import config, exports

    assert objectives.COMPONENTS == outputs.COMPONENTS == config.COMPONENTS
    assert objectives.CLIENT_REFRESH_SECONDS == exports.CLIENT_REFRESH_SECONDS
