"""What moto does not model, each figure from AWS's documentation (the package's docstring names
them): API quotas as token buckets, promotion time and per-call latency, and the boto3 clients that
pass every call through that model to moto."""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from benchmarks.aws_scale.virtual_clock import VirtualClock


@dataclass
class TokenBucket:
    capacity: float
    refill_per_second: float
    tokens: float = -1.0
    at: float = 0.0

    def take(self, now: float) -> bool:
        if self.tokens < 0:
            self.tokens, self.at = self.capacity, now
        self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.refill_per_second)
        self.at = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False



@dataclass
class Model:
    clock: VirtualClock
    promotion_seconds: float
    api_latency: float
    sql_latency: float
    max_attempts: int
    rng: random.Random
    lock: threading.Lock = field(default_factory=threading.Lock)
    promotions: dict[str, tuple[float, str]] = field(default_factory=dict)
    """identifier → (virtual time the promotion ends, the source ARN it replicated)."""
    buckets: dict[tuple[str, str], TokenBucket] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)
    throttled: dict[str, int] = field(default_factory=dict)
    failed: dict[str, int] = field(default_factory=dict)
    service_cpu: float = 0.0

    def bucket(self, service: str, region: str) -> TokenBucket | None:
        if service == "rds":
            key = ("rds", region)
            return self.buckets.setdefault(key, TokenBucket(300, 12))
        if service == "route53":
            return self.buckets.setdefault(("route53", "account"), TokenBucket(50, 10))
        return None

    def admit(self, service: str, region: str, op: str) -> bool:
        """One request through the quota, retried as botocore's standard mode retries a throttled
        one; False when every attempt was throttled."""
        for attempt in range(1, self.max_attempts + 1):
            with self.lock:
                self.calls[service] = self.calls.get(service, 0) + 1
                bucket = self.bucket(service, region)
                if bucket is None or bucket.take(self.clock.monotonic()):
                    return True
                self.throttled[service] = self.throttled.get(service, 0) + 1
            if attempt < self.max_attempts:
                self.clock.sleep(self.rng.random() * min(20.0, 2.0 ** (attempt - 1)))
        with self.lock:
            self.failed[f"{service}.{op}"] = self.failed.get(f"{service}.{op}", 0) + 1
        return False

    def promoting(self, identifier: str) -> tuple[float, str] | None:
        found = self.promotions.get(identifier)
        if found is None or self.clock.monotonic() >= found[0]:
            return None
        return found



class ModelledClient:
    """A boto3 client of moto, with the model's quota, latency and promotion in front of it."""

    THROTTLE = {"rds": ("ThrottlingException", "Rate exceeded"), "route53": ("Throttling", "Rate exceeded")}

    def __init__(self, client: Any, service: str, region: str, model: Model):
        self._client, self._service, self._region, self._model = client, service, region, model

    def __getattr__(self, op: str) -> Any:
        target = getattr(self._client, op)
        if not callable(target):
            return target

        def call(**params: Any) -> Any:
            m = self._model
            if not m.admit(self._service, self._region, op):
                from botocore.exceptions import ClientError
                code, message = self.THROTTLE[self._service]
                raise ClientError({"Error": {"Code": code, "Message": message},
                                   "ResponseMetadata": {"HTTPStatusCode": 400}}, op)
            with m.clock.busy():
                started = time.thread_time()
                if self._service == "rds" and op == "promote_read_replica":
                    before = target.__self__.describe_db_instances(
                        DBInstanceIdentifier=params["DBInstanceIdentifier"])["DBInstances"][0]
                    result = target(**params)
                    with m.lock:
                        m.promotions[params["DBInstanceIdentifier"]] = (
                            m.clock.monotonic() + m.api_latency + m.promotion_seconds,
                            before.get("ReadReplicaSourceDBInstanceIdentifier"))
                else:
                    result = target(**params)
                if self._service == "rds" and op == "describe_db_instances":
                    for inst in result.get("DBInstances") or []:
                        under_way = m.promoting(inst["DBInstanceIdentifier"])
                        if under_way:
                            inst["DBInstanceStatus"] = "modifying"
                            inst["ReadReplicaSourceDBInstanceIdentifier"] = under_way[1]
                with m.lock:
                    m.service_cpu += time.thread_time() - started
            m.clock.sleep(m.api_latency)
            return result

        return call



class ModelledClients:
    """Built lazily like the adapters' Clients; the benchmark hands it to ``aws_ports``."""

    def __new__(cls, session: Any, model: Model):
        from runbooks.adapters.aws import Clients

        class _Clients(Clients):
            def client(self, service: str, region: str) -> Any:
                with self._lock:
                    key = (service, region)
                    if key not in self._clients:
                        self._clients[key] = ModelledClient(session.client(service, region_name=region),
                                                            service, region, model)
                    return self._clients[key]

        return _Clients(session)
