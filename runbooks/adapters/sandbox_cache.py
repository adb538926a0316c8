"""The cache port on the sandbox: its real redis-server processes and RDB snapshots (sandbox/_cache.py)."""

from __future__ import annotations

from runbooks.core.errors import StepFailed


class SandboxCaches:
    SOURCE_PREFIXES = ("verify-",)

    def __init__(self, sb):
        self.sb = sb

    def _call(self, fn, *args):
        from sandbox.errors import SandboxError
        try:
            return fn(*args)
        except SandboxError as exc:
            raise StepFailed(str(exc)) from exc
        except OSError as exc:
            raise StepFailed(f"cache server unreachable: {exc}") from exc

    def caches(self) -> dict[str, str]:
        return {s["name"]: s["region"] for s in self.sb.caches.servers() if not s.get("restored_from")}

    def snapshot_info(self, region, snapshot_id):
        return self.sb.caches.snapshot_info(region, snapshot_id)

    def snapshots(self, region):
        return self.sb.caches.snapshots(region)

    def snapshot(self, cache, snapshot_id, tags):
        return self._call(self.sb.caches.snapshot, cache, snapshot_id, tags)

    def export(self, region, snapshot_id, target_region):
        return self._call(self.sb.caches.export, region, snapshot_id, target_region)

    def restore(self, region, snapshot_id, name):
        return self._call(self.sb.caches.restore, region, snapshot_id, name)

    def instance(self, name):
        return self.sb.caches.info(name)

    def state(self, name):
        return self._call(self.sb.caches.state, name)

    def drop(self, name):
        info = self.sb.caches.info(name)
        if info is not None and not info.get("restored_from"):
            raise StepFailed(f"{name} is a source cache, not a restore: the runbooks never delete it")
        return self.sb.caches.drop(name)
