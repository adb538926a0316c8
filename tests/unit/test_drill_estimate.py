"""The drill's PostgreSQL loss estimate always says how much WAL was in flight at the fault, also when
no write was acknowledged in its last second of samples (a quiet fresh-clone run took that branch and
the report had no ``in_flight_wal_bytes``)."""

from __future__ import annotations

from drills.measure import WorkloadLog
from drills.report import DrillReport


def samples(lsns: list[tuple[float, int, int]]) -> list[dict]:
    return [{"t": t, "primary_lsn": p, "received_lsn": r} for t, p, r in lsns]


def test_no_wal_written_in_the_last_second_still_reports_what_was_in_flight():
    est = DrillReport._estimate(None, samples([(9.2, 5000, 4000), (9.6, 5000, 4200), (9.9, 5000, 4200)]),
                                WorkloadLog(acks=[], errors=[]), fault_at=10.0)
    assert est["writes"] == 0.0 and est["in_flight_wal_bytes"] == 800 and est["samples"] == 3


def test_too_few_samples_say_so():
    est = DrillReport._estimate(None, samples([(9.9, 5000, 4000)]), WorkloadLog(acks=[], errors=[]), fault_at=10.0)
    assert est["writes"] is None and est["method"] == "not enough samples"
