import json

import pytest

from drills.measure import WorkloadLog, analyse, largest_pause, per_second


def write_log(path, entries):
    path.write_text("\n".join(json.dumps(e) for e in entries) + "\n" + '{"torn": ')
    return WorkloadLog.read(path)


def ack(i, t, region="east", db="payments"):
    return {"id": str(i), "t": t, "region": region, "database": db, "ok": True}


def test_loss_and_outage_are_counted_from_acknowledged_writes(tmp_path):
    entries = [ack(i, 10 + i * 0.1) for i in range(10)]            # 10.0 … 10.9 in east
    entries += [{"t": 11.0 + k * 0.1, "ok": False, "error": "connection refused", "database": "payments"}
                for k in range(5)]
    entries += [ack(100 + i, 12.5 + i * 0.1, region="west") for i in range(5)]
    log = write_log(tmp_path / "w.jsonl", entries)
    surviving = {"payments": {str(i) for i in range(8)} | {str(100 + i) for i in range(5)}}
    out = analyse(log, fault_at=10.95, target_region="west", surviving=surviving)
    assert out.acknowledged == 15 and out.errors == 5
    assert [a.id for a in out.lost] == ["8", "9"]
    assert out.rto_seconds == pytest.approx(12.5 - 10.9)
    assert out.rpo_seconds == pytest.approx(10.9 - 10.8)
    assert out.per_database["payments"] == {"acknowledged": 15, "acked_lost": 2}


def test_nothing_lost_means_rpo_zero_and_no_recovery_means_no_rto(tmp_path):
    log = write_log(tmp_path / "w.jsonl", [ack(i, i) for i in range(5)])
    out = analyse(log, fault_at=4.5, target_region="west", surviving={"payments": {str(i) for i in range(5)}})
    assert out.acked_lost == 0 and out.rpo_seconds == 0.0
    assert out.rto_seconds is None and out.outage is None


def test_largest_pause_and_rate(tmp_path):
    log = write_log(tmp_path / "w.jsonl", [ack(i, t) for i, t in enumerate([0, 0.1, 0.2, 0.9, 1.0, 1.1])])
    assert largest_pause(log.acks, 0.15, 0.95) == (0.2, 0.9)
    assert log.rate(until=1.1, window=1.0) == pytest.approx(4.0)  # (0.1, 1.1]: 0.2 0.9 1.0 1.1
    series = per_second(log, bucket=0.5)
    assert series["east"][0] == (0, 6.0)  # three writes in the first half second


def test_missing_log_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="did the workload start"):
        WorkloadLog.read(tmp_path / "nope.jsonl")


def test_kafka_skipped_means_passed_over_and_the_unreached_tail_is_counted_apart(tmp_path):
    from drills.measure import analyse_stream
    entries = [dict(ack(f"k{i}", 10 + i, region="east", db="orders"), system="kafka", partition=i % 2)
               for i in range(8)]                       # partition 0: k0 k2 k4 k6; partition 1: k1 k3 k5 k7
    for i in (0, 4, 1, 3):                              # k2 passed over on partition 0; k6, k5, k7 not reached
        entries.append({"event": "consumed", "system": "kafka", "id": f"k{i}", "t": 30 + i, "region": "west",
                        "group": "ledger"})
    entries.append({"event": "consumed", "system": "kafka", "id": "k0", "t": 40, "region": "west", "group": "ledger"})
    log = write_log(tmp_path / "w.jsonl", entries)
    out = analyse_stream(log, "kafka", outage_start=20, surviving={f"k{i}" for i in range(8)})
    assert out["skipped"] == 1 and out["unconsumed"] == 3 and out["duplicates"] == 1
    assert out["acknowledged"] == 8 and out["acked_lost"] == 0
