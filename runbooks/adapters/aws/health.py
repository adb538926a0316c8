"""The HealthProbe port in AWS: a region is healthy when its RDS API describes our instance, a
database when its endpoint takes a TCP connection.
"""

from __future__ import annotations

import socket

from contract.outputs import Outputs
from runbooks.adapters.aws.clients import Clients, database_of, describe_instance
from runbooks.core.errors import BadInput, Unreachable
from runbooks.core.ports import Health


class AwsHealth:
    def __init__(self, outputs: Outputs, clients: Clients):
        self.outputs = outputs
        self.clients = clients

    def region(self, region: str) -> Health:
        r = self.outputs.regions.get(region)
        if r is None:
            raise BadInput(f"region {region!r} is not in the stack outputs")
        db = next(iter(r.databases.values()))
        try:
            inst = describe_instance(self.clients, region, db.identifier)
        except Unreachable as exc:
            return Health(False, f"{region}: RDS API does not answer ({exc})")
        if inst is None:
            return Health(False, f"{region}: RDS API answers, but {db.identifier} does not exist")
        return Health(True, f"{region}: RDS API answers ({db.identifier} is {inst.get('DBInstanceStatus')})")

    def database(self, region: str, database: str) -> Health:
        _, db = database_of(self.outputs, region, database)
        try:
            with socket.create_connection((db.endpoint, db.port), timeout=self.clients.settings.tcp_timeout):
                pass
        except OSError as exc:
            return Health(False, f"{region}/{database} ({db.endpoint}:{db.port}) refuses connections: "
                                 f"{exc.strerror or type(exc).__name__}")
        return Health(True, f"{region}/{database} ({db.endpoint}:{db.port}) accepts connections")
