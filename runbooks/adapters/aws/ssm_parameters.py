"""The SSM parameters the clients read (bootstrap servers, writer targets, PAUSED), in every
region that holds them: read, written and the time of the latest pause.
"""

from __future__ import annotations

from datetime import datetime

from botocore.exceptions import ClientError

from contract.outputs import Outputs
from runbooks.adapters.aws.clients import Clients, error_code, fail
from runbooks.core.errors import Unreachable
from runbooks.core.ports import PAUSED


class Parameters:
    """The SSM parameters clients read, in every region that holds them (the outputs say which:
    a region whose streaming/storage names the parameter; none named → every region)."""

    def __init__(self, outputs: Outputs, clients: Clients):
        self.outputs = outputs
        self.clients = clients

    def regions_of(self, parameter: str) -> list[str]:
        holding = []
        for r in self.outputs.regions.values():
            names = set()
            if r.streaming is not None:
                names |= set(r.streaming.client_parameters) | {r.streaming.bootstrap_parameter}
            if r.storage is not None:
                names.add(r.storage.writer_parameter)
            if parameter in names:
                holding.append(r.name)
        return holding or list(self.outputs.regions)

    def read_all(self, parameter: str) -> dict[str, tuple[str | None, datetime | None]]:
        """Region → (value, LastModifiedDate) for every holding region that answers (None: no such parameter)."""
        found: dict[str, tuple[str | None, datetime | None]] = {}
        for region in self.regions_of(parameter):
            try:
                p = self.clients.call("ssm", region, "get_parameter", Name=parameter)["Parameter"]
            except Unreachable:
                continue
            except ClientError as exc:
                if error_code(exc) == "ParameterNotFound":
                    found[region] = (None, None)
                    continue
                raise fail(exc, f"read parameter {parameter} in {region}") from exc
            found[region] = (p.get("Value"), p.get("LastModifiedDate"))
        return found

    def read(self, parameter: str) -> str | None:
        found = self.read_all(parameter)
        if not found:
            raise Unreachable(f"SSM answers in none of {', '.join(self.regions_of(parameter))}: cannot read {parameter}")
        values = {v for v, _ in found.values()}
        if len(values) == 1:
            return values.pop()
        # clients are split between values: say so (never equal to a value a step wants)
        return "differs by region: " + ", ".join(f"{r}={v}" for r, (v, _) in sorted(found.items()))

    def write(self, parameter: str, value: str) -> str:
        written, missed = [], []
        for region in self.regions_of(parameter):
            try:
                self.clients.call("ssm", region, "put_parameter", Name=parameter, Value=value, Type="String",
                                  Overwrite=True)
            except Unreachable as exc:
                missed.append(f"{region} ({exc})")
                continue
            except ClientError as exc:
                raise fail(exc, f"set parameter {parameter} in {region}") from exc
            written.append(region)
        if not written:
            raise Unreachable(f"SSM answers in none of {', '.join(self.regions_of(parameter))}: {parameter} unchanged")
        result = f"{parameter} = {value} in {', '.join(written)}"
        if missed:
            result += (f"; NOT written in {'; '.join(missed)}: clients there keep the old value until a rerun "
                       "writes it (the step's check will find it different)")
        return result

    def paused_since(self, parameters: list[str]) -> float | None:
        """Epoch seconds of the latest switch to PAUSED among these parameters (None: none paused)."""
        latest = None
        for parameter in parameters:
            for value, modified in self.read_all(parameter).values():
                if value == PAUSED and modified is not None:
                    t = modified.timestamp()
                    latest = t if latest is None else max(latest, t)
        return latest
