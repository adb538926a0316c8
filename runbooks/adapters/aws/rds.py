"""The DatabaseControl port on RDS: describe, promote, rebuild a replica, and fence the old primary
by revoking its security group's client ingress (remembered in the group's tags by the fence-rule
codec here, so a crash never loses them) and ending its client sessions.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, Iterable

from botocore.exceptions import ClientError

from contract.outputs import Database, Outputs
from runbooks.adapters.aws.clients import (
    TAG_VALUE_MAX,
    Clients,
    database_of,
    describe_instance,
    error_code,
    fail,
    region_of_arn,
)
from runbooks.adapters.aws.sql import PsycopgSql
from runbooks.core.clock import Clock, wait_until
from runbooks.core.errors import BadInput, StepFailed, Unreachable
from runbooks.core.ports import DbInstance

FENCED_TAG = "regionpair:fenced"
"""On the database's security group while its client ingress is revoked by the runbooks."""
RULES_TAG = "regionpair:fenced-rules"
"""Prefix of the tags (``…:0``, ``…:1`` …) that remember the revoked ingress rules, as JSON."""
KEEP_PREFIX = "regionpair:runbook-access"
"""An ingress rule whose description starts with this is the runbooks' own way in (SQL probes,
draining a fenced primary); fencing keeps it. Clients never get a rule described so."""
MAX_RULE_TAGS = 40
"""EC2 allows 50 tags per resource; keep room for the stack's own."""
SOURCE_KEYS = (("IpRanges", "CidrIp"), ("Ipv6Ranges", "CidrIpv6"), ("PrefixListIds", "PrefixListId"),
                ("UserIdGroupPairs", "GroupId"))


def flatten_rules(permissions: Iterable[dict]) -> list[dict]:
    """One entry per (protocol, ports, source): the unit EC2 revokes and authorizes, and what is
    remembered to restore exactly. Each entry is a valid IpPermissions item."""
    flat = []
    for perm in permissions:
        base = {"IpProtocol": perm["IpProtocol"]}
        for k in ("FromPort", "ToPort"):
            if k in perm:
                base[k] = perm[k]
        for list_key, id_key in SOURCE_KEYS:
            for source in perm.get(list_key) or []:
                entry = {k: v for k, v in source.items() if k in (id_key, "Description", "UserId", "VpcId",
                                                                   "VpcPeeringConnectionId")}
                if list_key == "UserIdGroupPairs":
                    entry.pop("VpcId", None)
                flat.append({**base, list_key: [entry]})
    return flat


def rule_key(rule: dict) -> str:
    """Identity of a rule regardless of its description (EC2 treats those as the same rule)."""
    stripped = json.loads(json.dumps(rule))
    for list_key, _ in SOURCE_KEYS:
        for source in stripped.get(list_key, []):
            source.pop("Description", None)
            source.pop("UserId", None)
    return json.dumps(stripped, sort_keys=True)


def is_kept(rule: dict) -> bool:
    return any((s.get("Description") or "").startswith(KEEP_PREFIX)
               for list_key, _ in SOURCE_KEYS for s in rule.get(list_key, []))


def encode_rules(rules: list[dict]) -> list[dict]:
    text = json.dumps(rules, separators=(",", ":"), sort_keys=True)
    chunks = [text[i:i + TAG_VALUE_MAX] for i in range(0, len(text), TAG_VALUE_MAX)] or ["[]"]
    if len(chunks) > MAX_RULE_TAGS:
        raise StepFailed(f"{len(rules)} ingress rules are too many to remember in {MAX_RULE_TAGS} tags; nothing was "
                         "revoked. Consolidate the security group's rules (e.g. a prefix list) and rerun")
    return [{"Key": f"{RULES_TAG}:{i}", "Value": c} for i, c in enumerate(chunks)]


def decode_rules(tags: dict[str, str]) -> list[dict] | None:
    parts = sorted(((int(k.rsplit(":", 1)[1]), v) for k, v in tags.items()
                    if k.startswith(RULES_TAG + ":") and k.rsplit(":", 1)[1].isdigit()))
    if not parts:
        return None
    try:
        return json.loads("".join(v for _, v in parts))
    except json.JSONDecodeError:
        raise StepFailed(f"the tags {RULES_TAG}:* that remember the revoked ingress rules are corrupt; restore the "
                         "rules from the stack (`pulumi up` on that region's stack) and delete those tags") from None


class RdsControl:
    def __init__(self, outputs: Outputs, clients: Clients, clock: Clock, sql: "PsycopgSql | None" = None):
        self.outputs = outputs
        self.clients = clients
        self.clock = clock
        self.sql = sql

    # ---- reading ---------------------------------------------------------------------------

    def describe(self, region: str, database: str) -> DbInstance:
        _, db = database_of(self.outputs, region, database)
        try:
            inst = describe_instance(self.clients, region, db.identifier)
        except Unreachable:
            return DbInstance(region, database, db.identifier, "unreachable", "unknown", False)
        if inst is None:
            return DbInstance(region, database, db.identifier, "not-found", "unknown", False)
        source = inst.get("ReadReplicaSourceDBInstanceIdentifier")
        role = "replica" if source else "primary"
        source_region = (region_of_arn(source) or region) if source else None
        try:
            fenced = self._fence_state(region, db, inst)[0]
        except Unreachable:
            fenced = False
        return DbInstance(region, database, db.identifier, inst.get("DBInstanceStatus", "unknown"), role, fenced,
                          source_region)

    def _group_ids(self, db: Database, inst: dict) -> list[str]:
        attached = [g["VpcSecurityGroupId"] for g in inst.get("VpcSecurityGroups") or []]
        declared = db.security_group_id or (attached[0] if len(attached) == 1 else None)
        if declared is None:
            raise BadInput(f"stack outputs: database {db.name} ({db.identifier}) names no security_group_id and "
                           f"has {len(attached)} attached; export the database's security group to fence it")
        return [declared] + [g for g in attached if g != declared]

    def _groups(self, region: str, group_ids: list[str]) -> dict[str, dict]:
        try:
            found = self.clients.call("ec2", region, "describe_security_groups", GroupIds=group_ids)
        except ClientError as exc:
            raise fail(exc, f"read security groups {', '.join(group_ids)} in {region}") from exc
        return {g["GroupId"]: g for g in found["SecurityGroups"]}

    def _fence_state(self, region: str, db: Database, inst: dict) -> tuple[bool, str, dict, list[str]]:
        """(fenced, declared group id, groups by id, groups other than the declared one that still let
        clients in)."""
        ids = self._group_ids(db, inst)
        groups = self._groups(region, ids)
        declared = groups[ids[0]]
        tags = {t["Key"]: t["Value"] for t in declared.get("Tags") or []}
        open_groups = [gid for gid in ids
                       if any(not is_kept(r) for r in flatten_rules((groups.get(gid) or {}).get("IpPermissions") or []))]
        return tags.get(FENCED_TAG) == "true" and not open_groups, ids[0], groups, open_groups

    # ---- fencing ---------------------------------------------------------------------------

    def fence(self, region: str, database: str) -> str:
        """Revoke client ingress on the database's security group, remembering the rules in tags of
        that group first (so a crash never loses them), then end established client sessions (a
        security group change does not cut tracked connections)."""
        _, db = database_of(self.outputs, region, database)
        inst = describe_instance(self.clients, region, db.identifier)
        if inst is None:
            raise StepFailed(f"{region}/{database}: no DB instance {db.identifier}; nothing to fence")
        fenced, gid, groups, _ = self._fence_state(region, db, inst)
        if fenced:
            return f"{region}/{database} was already fenced (security group {gid} lets no client in)"
        group = groups[gid]
        tags = {t["Key"]: t["Value"] for t in group.get("Tags") or []}
        current = flatten_rules(group.get("IpPermissions") or [])
        to_revoke = [r for r in current if not is_kept(r)]
        remembered = decode_rules(tags) or []
        known = {rule_key(r) for r in remembered}
        merged = remembered + [r for r in to_revoke if rule_key(r) not in known]
        new_tags = encode_rules(merged)
        stale = [k for k in tags if k.startswith(RULES_TAG + ":") and k not in {t["Key"] for t in new_tags}]
        try:
            self.clients.call("ec2", region, "create_tags", Resources=[gid],
                              Tags=new_tags + [{"Key": FENCED_TAG, "Value": "true"}])
            if stale:
                self.clients.call("ec2", region, "delete_tags", Resources=[gid], Tags=[{"Key": k} for k in stale])
            if to_revoke:
                self.clients.call("ec2", region, "revoke_security_group_ingress", GroupId=gid, IpPermissions=to_revoke)
        except ClientError as exc:
            raise fail(exc, f"fence {region}/{database} (security group {gid})") from exc
        _, _, _, still_open = self._fence_state(region, db, inst)
        if still_open:
            raise StepFailed(f"{region}/{database}: revoked {len(to_revoke)} ingress rule(s) of {gid}, but security "
                             f"group(s) {', '.join(still_open)} attached to {db.identifier} still let clients in; "
                             "detach them from the instance (or move their rules into the database's own group) "
                             "and rerun")
        sessions = self._end_sessions(region, database)
        return (f"fenced {region}/{database}: revoked {len(to_revoke)} ingress rule(s) of {gid} "
                f"(remembered in its tags for unfence); {sessions}")

    def _end_sessions(self, region: str, database: str) -> str:
        if self.sql is None:
            return "established sessions were left alone (no SQL access configured)"
        try:
            n = self.sql.terminate_client_sessions(region, database)
        except Unreachable as exc:
            return f"could not end established client sessions ({exc}); they end when the instance restarts"
        return f"ended {n} established client session(s)"

    def unfence(self, region: str, database: str) -> str:
        _, db = database_of(self.outputs, region, database)
        inst = describe_instance(self.clients, region, db.identifier)
        if inst is None:
            raise StepFailed(f"{region}/{database}: no DB instance {db.identifier}; nothing to unfence")
        gid = self._group_ids(db, inst)[0]
        group = self._groups(region, [gid])[gid]
        tags = {t["Key"]: t["Value"] for t in group.get("Tags") or []}
        remembered = decode_rules(tags)
        if remembered is None and FENCED_TAG not in tags:
            return f"{region}/{database} was not fenced by the runbooks (no {FENCED_TAG} tag on {gid})"
        present = {rule_key(r) for r in flatten_rules(group.get("IpPermissions") or [])}
        missing = [r for r in remembered or [] if rule_key(r) not in present]
        try:
            if missing:
                self.clients.call("ec2", region, "authorize_security_group_ingress", GroupId=gid,
                                  IpPermissions=missing)
            ours = [k for k in tags if k == FENCED_TAG or k.startswith(RULES_TAG + ":")]
            self.clients.call("ec2", region, "delete_tags", Resources=[gid], Tags=[{"Key": k} for k in ours])
        except ClientError as exc:
            raise fail(exc, f"unfence {region}/{database} (security group {gid})") from exc
        return f"unfenced {region}/{database}: restored {len(missing)} ingress rule(s) of {gid}"

    # ---- promotion and rebuild ---------------------------------------------------------------

    def promote(self, region: str, database: str) -> str:
        _, db = database_of(self.outputs, region, database)
        where = f"{region}/{database} ({db.identifier})"
        inst = describe_instance(self.clients, region, db.identifier)
        if inst is None:
            raise StepFailed(f"{where}: no such DB instance; check the stack outputs")
        if not inst.get("ReadReplicaSourceDBInstanceIdentifier"):
            return f"{where} is already standalone (promoted earlier)"
        try:
            self.clients.call("rds", region, "promote_read_replica", DBInstanceIdentifier=db.identifier)
        except ClientError as exc:
            if error_code(exc) == "InvalidDBInstanceState":
                status = (describe_instance(self.clients, region, db.identifier) or {}).get("DBInstanceStatus")
                if status in ("modifying", "rebooting", "renaming", "upgrading"):
                    return f"promotion of {where} already under way (status {status})"
                raise StepFailed(f"{where} cannot be promoted while {status}; wait until it is available, "
                                 "then rerun") from exc
            raise fail(exc, f"promote {where}") from exc
        return f"promotion of {where} started"

    def rebuild_replica(self, region: str, database: str, source_region: str) -> str:
        """RDS cannot demote a primary in place: rename the old instance aside (kept, never deleted
        here), then create a cross-region read replica of the current primary under the identifier
        the outputs name, encrypted with this region's KMS key."""
        r, db = database_of(self.outputs, region, database)
        _, src = database_of(self.outputs, source_region, database)
        where = f"{region}/{database}"
        inst = describe_instance(self.clients, region, db.identifier)
        source_inst = describe_instance(self.clients, source_region, src.identifier)
        if source_inst is None:
            raise StepFailed(f"{source_region}/{database}: no DB instance {src.identifier} to replicate from")
        source_arn = source_inst.get("DBInstanceArn") or src.arn
        if inst is not None and inst.get("ReadReplicaSourceDBInstanceIdentifier") in (source_arn, src.identifier):
            return f"{where} ({db.identifier}) already replicates {source_arn}"
        template = inst or {}
        kept = ""
        if inst is not None:
            if inst.get("ReadReplicaSourceDBInstanceIdentifier"):
                raise StepFailed(f"{where} ({db.identifier}) replicates {inst['ReadReplicaSourceDBInstanceIdentifier']}, "
                                 f"not {source_arn}; resolve by hand, the runbook does not rename a replica")
            aside = f"{db.identifier}-old-{datetime.fromtimestamp(self.clock.time(), timezone.utc):%Y%m%d%H%M%S}"
            aside = aside[:63]
            try:
                self.clients.call("rds", region, "modify_db_instance", DBInstanceIdentifier=db.identifier,
                                  NewDBInstanceIdentifier=aside, ApplyImmediately=True)
            except ClientError as exc:
                raise fail(exc, f"rename {where} ({db.identifier}) aside to {aside}") from exc
            wait_until(lambda: describe_instance(self.clients, region, db.identifier) is None,
                       what=f"RDS to rename {db.identifier} to {aside}", timeout=self.clients.settings.rename_timeout,
                       clock=self.clock, interval=1.0, max_interval=10.0)
            kept = (f"; the former instance is kept as {aside} (renamed, so its endpoint changed; the runbook never "
                    "deletes it: delete it yourself once the new replica has caught up)")
        params: dict[str, Any] = {
            "DBInstanceIdentifier": db.identifier,
            "SourceDBInstanceIdentifier": source_arn,
            "SourceRegion": source_region,
            "PubliclyAccessible": False,
            "CopyTagsToSnapshot": True,
            "DeletionProtection": True,
            "Tags": [{"Key": "regionpair:rebuilt-from", "Value": source_arn[:TAG_VALUE_MAX]}],
        }
        if r.kms_key_arn:
            params["KmsKeyId"] = r.kms_key_arn
        if db.security_group_id:
            params["VpcSecurityGroupIds"] = [db.security_group_id]
        for key in ("DBInstanceClass", "MultiAZ", "StorageType"):
            if template.get(key) is not None:
                params[key] = template[key]
        if template.get("DBSubnetGroup", {}).get("DBSubnetGroupName"):
            params["DBSubnetGroupName"] = template["DBSubnetGroup"]["DBSubnetGroupName"]
        if template.get("Endpoint", {}).get("Port"):
            params["Port"] = template["Endpoint"]["Port"]
        try:
            self.clients.call("rds", region, "create_db_instance_read_replica", **params)
        except ClientError as exc:
            raise fail(exc, f"create {db.identifier} in {region} as a replica of {source_arn}") from exc
        key = f", encrypted with {r.kms_key_arn}" if r.kms_key_arn else ""
        return f"creating {db.identifier} in {region} as a read replica of {source_arn}{key}{kept}"
