"""The Kafka topic backups in AWS: the Parquet files the S3 sink connector (components/kafka_backup.py)
writes into the primary region's backups bucket, read with S3, and MSK reached with IAM.

The store is the backups bucket (``list_objects_v2`` / ``get_object``; ``put_object`` and
``delete_object`` for completeness of the port — the connector writes, lifecycle rules expire);
the Kafka side is ``KafkaTopics`` on MSK's IAM bootstrap servers (``get_bootstrap_brokers``),
SASL/OAUTHBEARER over TLS. Tested against moto (S3) in tests/contract/test_aws_kafka_backup.py;
the Kafka client is the one the sandbox's end-to-end test drives against real brokers."""

from __future__ import annotations

from botocore.exceptions import ClientError

from contract.outputs import Outputs
from runbooks.adapters.aws.clients import Clients, error_code, fail
from runbooks.backups.ports import KafkaBackupPort
from runbooks.core.errors import BadInput


class S3BackupStore:
    def __init__(self, clients: Clients, region: str, bucket: str):
        self.clients = clients
        self.region = region
        self.bucket = bucket

    def put(self, key: str, data: bytes) -> None:
        try:
            self.clients.call("s3", self.region, "put_object", Bucket=self.bucket, Key=key, Body=data)
        except ClientError as exc:
            raise fail(exc, f"write s3://{self.bucket}/{key}") from exc

    def get(self, key: str) -> bytes | None:
        try:
            obj = self.clients.call("s3", self.region, "get_object", Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if error_code(exc) in ("NoSuchKey", "404"):
                return None
            raise fail(exc, f"read s3://{self.bucket}/{key}") from exc
        return obj["Body"].read()

    def list(self, prefix: str) -> list[str]:
        keys, token = [], None
        try:
            while True:
                page = self.clients.call("s3", self.region, "list_objects_v2", Bucket=self.bucket, Prefix=prefix,
                                         **({"ContinuationToken": token} if token else {}))
                keys += [o["Key"] for o in page.get("Contents", [])]
                token = page.get("NextContinuationToken")
                if not token:
                    return sorted(keys)
        except ClientError as exc:
            raise fail(exc, f"list s3://{self.bucket}/{prefix}") from exc

    def delete(self, key: str) -> None:
        try:
            self.clients.call("s3", self.region, "delete_object", Bucket=self.bucket, Key=key)
        except ClientError as exc:
            raise fail(exc, f"delete s3://{self.bucket}/{key}") from exc

    def describe(self) -> str:
        return f"s3://{self.bucket}"


def aws_kafka_backups(outputs: Outputs, clients: Clients, bootstrap=None) -> KafkaBackupPort | None:
    """The port for the primary region's backups bucket and the regions' MSK clusters; None when the
    outputs name no backups bucket. ``bootstrap(region)``: MSK's IAM bootstrap servers (default:
    GetBootstrapBrokers of the region's cluster)."""
    from runbooks.adapters.kafka_client import KafkaTopics, msk_iam_config
    primary = outputs.primary
    if primary.storage is None or not primary.storage.backups_bucket:
        return None

    def brokers(region: str) -> str:
        r = outputs.regions.get(region)
        if r is None or r.streaming is None:
            raise BadInput(f"stack outputs: region {region!r} has no streaming to replay into")
        try:
            b = clients.call("kafka", region, "get_bootstrap_brokers", ClusterArn=r.streaming.cluster_arn)
        except ClientError as exc:
            raise fail(exc, f"read the bootstrap brokers of {r.streaming.cluster_arn}") from exc
        value = b.get("BootstrapBrokerStringSaslIam")
        if not value:
            raise BadInput(f"MSK cluster {r.streaming.cluster_arn} has no IAM bootstrap brokers; the streaming "
                           "component enables IAM over TLS")
        return value

    find = bootstrap or brokers
    return KafkaBackupPort(store=S3BackupStore(clients, primary.name, primary.storage.backups_bucket),
                           cluster=lambda region: KafkaTopics(find(region), msk_iam_config(region)),
                           source_region=primary.name)
