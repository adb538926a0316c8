"""Bring the objects under a prefix back to how they were at a time T (S3 versions).

    python -m runbooks.undelete --outputs FILE --bucket NAME [--prefix P] --to-time T [--dry-run] [--yes]

For every key under the prefix, the version that was current at T is made current again:

- deleted since T (only delete markers newer than that version), or overwritten since T (a newer
  real version): that version is copied over the key (a new version with the old content; the
  delete markers and newer versions stay in the history, nothing is lost). Delete markers are not
  removed: that takes ``s3:DeleteObjectVersion``, which deletes any version for good, and the
  runbook role has none on the data buckets (components/access.py);
- unchanged, or created after T, or already deleted at T: left as is, and listed.

A bucket without versioning is refused (nothing could be brought back). ``--dry-run`` lists what
would be done per key. Each key is its own step: a rerun continues where a run stopped."""

from __future__ import annotations

import sys
from dataclasses import dataclass

from runbooks.backups import cli as backup_cli
from runbooks.backups.ports import ObjectVersion
from runbooks.core.clock import iso
from runbooks.core.engine import Check, Phase, Plan, Step
from runbooks.core.errors import BadInput, StepFailed


def add_arguments(p) -> None:
    p.add_argument("--bucket", required=True, help="a bucket of the stack outputs (data or backups bucket)")
    p.add_argument("--prefix", default="", help="only keys under this prefix (default: the whole bucket)")
    p.add_argument("--to-time", required=True, metavar="T", help="ISO 8601 time with a timezone")


@dataclass(frozen=True)
class KeyPlan:
    key: str
    action: str
    """`copy-back` or `leave`."""
    version: ObjectVersion | None
    """The version current at T."""
    markers: tuple[str, ...] = ()
    """The delete markers newer than `version` (a deleted key): left in the history."""
    why: str = ""


def plan_keys(versions: list[ObjectVersion], t: float) -> list[KeyPlan]:
    by_key: dict[str, list[ObjectVersion]] = {}
    for v in versions:
        by_key.setdefault(v.key, []).append(v)
    plans = []
    for key in sorted(by_key):
        vs = sorted(by_key[key], key=lambda v: (v.last_modified, v.is_latest))
        at_t = [v for v in vs if v.last_modified <= t]
        current = next((v for v in vs if v.is_latest), vs[-1])
        if not at_t:
            plans.append(KeyPlan(key, "leave", None, why=f"created after {iso(t)}; left as is"))
            continue
        then = at_t[-1]
        if then.delete_marker:
            plans.append(KeyPlan(key, "leave", then, why=f"already deleted at {iso(t)}; left as is"))
            continue
        if current.version_id == then.version_id:
            plans.append(KeyPlan(key, "leave", then, why="unchanged since then"))
            continue
        if not current.delete_marker and current.etag and current.etag == then.etag and current.size == then.size:
            plans.append(KeyPlan(key, "leave", then, why=f"holds the content of {then.version_id} again (same ETag)"))
            continue
        newer = [v for v in vs if v.last_modified > then.last_modified or (v.last_modified == then.last_modified
                                                                             and v.version_id != then.version_id
                                                                             and v.is_latest)]
        if newer and all(v.delete_marker for v in newer):
            plans.append(KeyPlan(key, "copy-back", then, tuple(v.version_id for v in newer),
                                 why=f"deleted after {iso(t)}: copy version {then.version_id} back over "
                                     f"{len(newer)} delete marker(s), which stay in the history"))
        else:
            plans.append(KeyPlan(key, "copy-back", then,
                                 why=f"overwritten after {iso(t)}: copy version {then.version_id} back over it"))
    return plans


def plan(ctx) -> Plan:
    a = ctx.args
    t = backup_cli.parse_time(a.to_time)
    now = ctx.clock.time()
    if t > now:
        raise BadInput(f"--to-time {iso(t)} is in the future (now is {iso(now)}); nothing was changed")
    objects = ctx.ports.objects
    status = objects.versioning(a.bucket)  # BadInput for a bucket that is not in the outputs
    if status != "Enabled":
        raise BadInput(f"bucket {a.bucket} has no versioning (status: {status or 'never enabled'}); without "
                       "versions there is nothing to bring back. Nothing was changed")
    key_plans = plan_keys(objects.versions(a.bucket, a.prefix), t)
    ctx.results["keys"] = key_plans
    ctx.results["_dry"] = {"listing": [f"{k.key}: {k.why}" for k in key_plans]}
    steps = [_key_step(ctx, a.bucket, k) for k in key_plans if k.action != "leave"]
    return Plan("undelete", [Phase("undelete", steps)])


def _current(ctx, bucket: str, key: str) -> ObjectVersion | None:
    return next((v for v in ctx.ports.objects.versions(bucket, key) if v.key == key and v.is_latest), None)


def _key_step(ctx, bucket: str, k: KeyPlan) -> Step:
    def check() -> Check:
        cur = _current(ctx, bucket, k.key)
        if cur is not None and not cur.delete_marker and (
                cur.version_id == k.version.version_id or
                (k.action == "copy-back" and cur.etag and cur.etag == k.version.etag and cur.size == k.version.size)):
            return Check.done(f"{k.key} holds the content of version {k.version.version_id}")
        return Check.todo(k.why)

    def apply() -> str:
        new = ctx.ports.objects.restore_version(bucket, k.key, k.version.version_id)
        return f"s3://{bucket}/{k.key}: version {k.version.version_id} copied back as {new}"

    def verify() -> str:
        if check().status.value != "done":
            raise StepFailed(f"s3://{bucket}/{k.key} does not hold version {k.version.version_id}'s content after the "
                             "change")
        return "current version checked"

    return Step(f"undelete:{k.key}", k.why, f"s3://{bucket}/{k.key}", check, apply, verify, lane=k.key)


def summarize(ctx) -> dict:
    keys = ctx.results.get("keys", [])
    changed = [k for k in keys if k.action != "leave"]
    return {"passed": True, "summary": f"{len(changed)} object(s) brought back to {iso(backup_cli.parse_time(ctx.args.to_time))} "
            f"in s3://{ctx.args.bucket}/{ctx.args.prefix} ({len(keys) - len(changed)} left as they were)",
            "listing": [f"{k.key}: {k.why}" for k in keys],
            "objects": [{"key": k.key, "action": k.action, "version": k.version.version_id if k.version else None}
                        for k in keys]}


RUNBOOK = backup_cli.BackupRunbook(
    name="undelete", description="Bring the objects under a prefix back to how they were at a time T.",
    add_arguments=add_arguments, plan=plan, summarize=summarize, per_database=False)


def main(argv=None, **kwargs) -> int:
    return backup_cli.main(RUNBOOK, argv, **kwargs)


if __name__ == "__main__":
    sys.exit(main())
