"""The cache (Redis / ElastiCache) backup port and the steps both cache runbooks share.

A snapshot records the key count and a digest of the whole dataset taken with it (sandbox: Redis's
``DEBUG DIGEST`` while writes are paused for the ``SAVE``); a restore is verified by the same two
figures on the new server, so "keys compared" is exact: equal digests mean the same keys with the
same values. Adapters: ``runbooks.adapters.sandbox_cache`` (real redis-server). AWS: not written
yet (the stacks declare the replication group and the export bucket; docs/backups.md says what the
AWS calls would be)."""

from __future__ import annotations

from typing import Any, Protocol

from runbooks.core import metrics as prom
from runbooks.core.clock import iso
from runbooks.core.engine import Check, Step
from runbooks.core.errors import StepFailed
from runbooks.core.metrics import Sample


class CacheControl(Protocol):
    def caches(self) -> dict[str, str]:
        """Cache name → the region it runs in."""

    def snapshot_info(self, region: str, snapshot_id: str) -> dict | None:
        """``{id, cache, region, keys, digest, taken_at, …}`` or None."""

    def snapshots(self, region: str) -> list[dict]: ...

    def snapshot(self, cache: str, snapshot_id: str, tags: dict[str, str]) -> dict:
        """A manual snapshot with its key count and digest (idempotent by id)."""

    def export(self, region: str, snapshot_id: str, target_region: str) -> dict:
        """The snapshot made available in ``target_region`` (idempotent)."""

    def restore(self, region: str, snapshot_id: str, name: str) -> dict:
        """A NEW cache ``name`` in ``region`` from the snapshot held there; returns it once it answers."""

    def instance(self, name: str) -> dict | None: ...

    def state(self, name: str) -> dict:
        """``{keys, digest}`` of a running cache."""

    def drop(self, name: str) -> str:
        """Delete a cache the runbooks restored (never the source)."""


def snapshot_id(cache: str, run_id: str) -> str:
    stamp = run_id.split("-", 1)[1] if "-" in run_id else run_id
    return f"regionpair-{cache}-{stamp}".lower().replace("_", "-").replace("--", "-")


def restore_step(ctx: Any, cache: str, region: str, sid: str, name: str, res: dict, keep: bool) -> Step:
    """Restore ``sid`` (held in ``region``) into a NEW cache ``name`` and compare keys and digest."""
    control: CacheControl = ctx.ports.caches

    def check() -> Check:
        if res.get("verified") is not None:
            return Check.done(f"restore of {sid} into {name} verified in this run")
        return Check.todo(f"restore {region}/{sid} into a new cache {name} and compare its keys")

    def apply() -> str:
        snap = control.snapshot_info(region, sid)
        if snap is None:
            raise StepFailed(f"no snapshot {sid} in {region} to restore")
        start = ctx.clock.monotonic()
        inst = control.restore(region, sid, name)
        seconds = ctx.clock.monotonic() - start
        got = control.state(name)
        ok = got["keys"] == snap["keys"] and got["digest"] == snap["digest"]
        res.update(verified=ok, restored=name, restore_seconds=seconds, restored_keys=got["keys"],
                   snapshot_keys=snap["keys"], endpoint=f"{inst.get('address')}:{inst.get('port')}")
        labels = {"cache": cache, "region": region}
        ctx.samples += [Sample(prom.CACHE_RESTORE_SECONDS, seconds, labels, prom.HELP[prom.CACHE_RESTORE_SECONDS],
                               "Seconds"),
                        Sample(prom.CACHE_VERIFY_OK, 1.0 if ok else 0.0, labels, prom.HELP[prom.CACHE_VERIFY_OK],
                               "Count")]
        ctx.audit_action("cache-restore", f"{region}/{name}", "ok" if ok else "FAILED",
                         f"from {sid}: {got['keys']} keys restored, {snap['keys']} in the snapshot")
        if not ok:
            res["reason"] = (f"{name} holds {got['keys']} keys (digest {got['digest'][:12]}…), the snapshot "
                             f"{sid} recorded {snap['keys']} (digest {snap['digest'][:12]}…)")
            return f"VERIFICATION FAILED: {res['reason']}"
        return (f"{name} restored from {region}/{sid} in {seconds:.2f} s: {got['keys']} keys, digest equal to the "
                f"snapshot's (taken {iso(snap['taken_at'])})" + ("" if keep else "; removed again below"))

    return Step(f"restore:{cache}", f"restore {sid} into a new cache {name} in {region} and compare keys",
                f"{region}/{name}", check, apply, lane=cache)
