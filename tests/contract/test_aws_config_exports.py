"""The configuration exports of the AWS adapter on moto (server mode): objects written as the export
CronJob writes them (key layout, JSON List, SSE-KMS with the region's key, through a real KMS key in
moto), listed by run, read back and decrypted by GetObject; an object not encrypted with the region
key, or damaged, refused naming it; and a whole config_restore from S3 into the kubectl stand-in."""

from __future__ import annotations

import io
import json
import urllib.request

import pytest

from contract import outputs as contract
from runbooks import config_restore
from runbooks.adapters.aws import Clients
from runbooks.adapters.aws.config_exports import S3ConfigExports
from runbooks.backups import k8s_config_export as kc
from runbooks.core.errors import EXIT_BAD_INPUT, EXIT_OK, BadInput
from tests.fakes import FakeWorld, backup_ports
from tests.helpers.config_restore import CTX, cm, secret
from tests.helpers.kubectl import FakeKubectl
from tests.helpers.moto import S, shared_session
from tests.samples import pair_document

STAMP = "2026-11-22T023000Z"


class Pair:
    pass


@pytest.fixture
def s3_pair(moto_server, aws_env, tmp_path):
    urllib.request.urlopen(urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST"), timeout=60).read()
    aws_env.setenv("AWS_ENDPOINT_URL", moto_server)
    session = shared_session()
    key = session.client("kms", region_name=S).create_key(Description="dr region key")["KeyMetadata"]["Arn"]
    doc = pair_document()
    doc["regions"][S]["kms_key_arn"] = key
    doc["regions"][S]["kubernetes"] = {"context": CTX, "namespaces": ["payments"]}
    bucket = doc["regions"][S]["storage"]["backups_bucket"]
    s3 = session.client("s3", region_name=S)
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": S})
    p = Pair()
    p.doc, p.key, p.bucket, p.s3, p.session, p.tmp = doc, key, bucket, s3, session, tmp_path
    p.outputs = contract.from_dict(doc)
    p.store = S3ConfigExports(p.outputs, Clients(session))

    def put(stamp, ns, kind, items, sse=True, key_id=None):
        body = json.dumps({"apiVersion": "v1", "kind": "List", "items": items}).encode()
        extra = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": key_id or key} if sse else {}
        s3.put_object(Bucket=bucket, Key=f"{kc.EXPORT_PREFIX}/{stamp}/{ns}/{kc.FILES[kind]}", Body=body, **extra)
    p.put = put
    return p


def seed_day(p, stamp=STAMP):
    p.put(stamp, "payments", "ConfigMap", [cm("payments", "app-config", {"LOG_LEVEL": "info"})])
    p.put(stamp, "payments", "Secret", [secret("payments", "db-credentials", {"password": "aHVudGVyMg=="})])
    p.put(stamp, "checkout", "ConfigMap", [cm("checkout", "web-config", {"THEME": "dark"})])


def test_exports_are_listed_by_run_and_read_back_decrypted_as_the_job_encrypted_them(s3_pair):
    p = s3_pair
    seed_day(p)
    seed_day(p, "2026-11-21T023000Z")
    p.s3.put_object(Bucket=p.bucket, Key="pgdump/payments/2026-11-22T020000Z.dump", Body=b"x")  # not an export
    assert p.store.stamps(S) == ["2026-11-21T023000Z", STAMP]
    head = p.s3.head_object(Bucket=p.bucket, Key=f"k8s-config/{STAMP}/payments/configmaps.json")
    assert head["ServerSideEncryption"] == "aws:kms" and head["SSEKMSKeyId"].endswith(p.key.rsplit("/", 1)[-1])
    export = p.store.load(S, STAMP)
    assert export.location == f"s3://{p.bucket}/k8s-config/{STAMP}/"
    assert export.namespaces == ["checkout", "payments"]
    assert export.configmaps["payments"][0].data == {"LOG_LEVEL": "info"}
    assert export.secrets["payments"][0].name == "db-credentials"


def test_an_export_object_not_encrypted_with_the_region_key_is_refused_naming_it(s3_pair):
    p = s3_pair
    seed_day(p)
    p.put(STAMP, "payments", "ConfigMap", [cm("payments", "app-config", {"LOG_LEVEL": "evil"})], sse=False)
    with pytest.raises(kc.ExportDamaged) as err:
        p.store.load(S, STAMP)
    assert f"s3://{p.bucket}/k8s-config/{STAMP}/payments/configmaps.json" in str(err.value)
    assert "not encrypted as the export job encrypts it" in str(err.value)
    other = p.session.client("kms", region_name=S).create_key(Description="other")["KeyMetadata"]["Arn"]
    p.put(STAMP, "payments", "ConfigMap", [cm("payments", "app-config", {"LOG_LEVEL": "x"})], key_id=other)
    with pytest.raises(kc.ExportDamaged, match=other.rsplit("/", 1)[-1]):
        p.store.load(S, STAMP)


def test_a_damaged_export_or_a_region_without_backups_bucket_is_refused(s3_pair):
    p = s3_pair
    p.s3.put_object(Bucket=p.bucket, Key=f"k8s-config/{STAMP}/payments/configmaps.json", Body=b"{not json",
                    ServerSideEncryption="aws:kms", SSEKMSKeyId=p.key)
    with pytest.raises(kc.ExportDamaged, match="configmaps.json is not JSON"):
        p.store.load(S, STAMP)
    p.put(STAMP, "payments", "ConfigMap", [cm("checkout", "stray", {"A": "1"})])
    with pytest.raises(kc.ExportDamaged, match="of namespace checkout, not payments"):
        p.store.load(S, STAMP)
    doc = json.loads(json.dumps(p.doc))
    doc["regions"][S]["storage"]["backups_bucket"] = None
    with pytest.raises(BadInput, match="backups_bucket is missing"):
        S3ConfigExports(contract.from_dict(doc), Clients(p.session)).stamps(S)


def test_a_restore_from_s3_into_the_cluster_end_to_end(s3_pair, monkeypatch):
    p = s3_pair
    seed_day(p)
    fake = FakeKubectl.install(p.tmp, monkeypatch)
    fake.namespaces(CTX, ["payments", "checkout"])
    fake.rollouts(CTX, 1)
    fake.seed_configmap(CTX, "payments", "app-config", {"LOG_LEVEL": "debug"})
    fake.seed_workload(CTX, "deployment", "payments", "payments-api",
                       {"containers": [{"name": "app", "envFrom": [{"configMapRef": {"name": "app-config"}}]}]})
    doc_path = p.tmp / "outputs.json"
    doc_path.write_text(json.dumps(p.doc))
    world = FakeWorld(p.outputs)
    ports = backup_ports(world, p.tmp / "state")
    ports.config_exports = p.store

    def run(*extra):
        buf = io.StringIO()
        code = config_restore.main(["--outputs", str(doc_path), "--state-dir", str(p.tmp / "state"), "--output",
                                    "json", "--region", "dr", *extra], ports_factory=lambda o, c: ports,
                                   clock=world.clock, stdin=io.StringIO(), stdout=buf)
        return code, json.loads(buf.getvalue())

    code, out = run("--day", "2026-11-24", "--yes")
    assert code == EXIT_BAD_INPUT and "nearest days with one: 2026-11-22" in out["error"]
    code, out = run("--day", "2026-11-22", "--yes")
    assert code == EXIT_OK, out
    assert fake.configmap(CTX, "payments", "app-config")["data"] == {"LOG_LEVEL": "info"}
    assert fake.configmap(CTX, "checkout", "web-config")["data"] == {"THEME": "dark"}
    assert fake.secret(CTX, "payments", "db-credentials") is None  # no consent: not restored
    assert fake.workload(CTX, "deployment", "payments", "payments-api")["metadata"]["generation"] == 2
    assert out["export"] == f"s3://{p.bucket}/k8s-config/{STAMP}/"


def test_an_export_of_every_namespace_is_read_by_each_objects_own_namespace(s3_pair):
    p = s3_pair
    p.put(STAMP, kc.ALL_NAMESPACES, "ConfigMap", [cm("payments", "a", {"K": "1"}), cm("billing", "b", {"K": "2"})])
    p.put(STAMP, kc.ALL_NAMESPACES, "Secret", [secret("billing", "s", {"k": "dg=="})])
    export = p.store.load(S, STAMP)
    assert export.namespaces == ["billing", "payments"]
    assert [o.name for o in export.configmaps["billing"]] == ["b"] and export.secrets["billing"][0].name == "s"
