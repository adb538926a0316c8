"""S3 in the sandbox, as the controller and the clients reach it: each region's versioned data
bucket on that region's moto server, a client for it, and its keys."""

from __future__ import annotations

from sandbox.errors import SandboxError
from sandbox.layout import Layout, State


def bucket_name(region: str) -> str:
    return f"regionpair-sandbox-{region}-data"


def s3_client(endpoint: str):
    import boto3
    from botocore.config import Config

    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="sandbox",
                        aws_secret_access_key="sandbox",
                        config=Config(connect_timeout=1, read_timeout=3, retries={"max_attempts": 1}))


def object_keys(layout: Layout, state: State, region: str) -> set[str]:
    client = s3_client(f"http://{state.addresses[region]}:{state.moto_port}")
    keys: set[str] = set()
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket_name(region)):
        keys |= {o["Key"] for o in page.get("Contents", [])}
    return keys


def versioning(layout: Layout, state: State, region: str) -> str | None:
    """The data bucket's versioning status (``Enabled``, ``Suspended``, None = never enabled)."""
    from botocore.exceptions import BotoCoreError, ClientError

    client = s3_client(f"http://{state.addresses[region]}:{state.moto_port}")
    try:
        return client.get_bucket_versioning(Bucket=bucket_name(region)).get("Status")
    except (BotoCoreError, ClientError) as exc:
        raise SandboxError(f"S3 of {region} does not answer: {exc}", component=f"moto-{region}",
                           log=layout.log(f"moto-{region}")) from None
