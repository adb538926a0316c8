"""Kafka and S3 lanes of the failover, switchover and failback, on in-memory fakes (tests/fakes.py)."""

from __future__ import annotations

import json

import pytest

from contract import outputs as contract
from runbooks import failback, failover, switchover
from runbooks.core.errors import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, EXIT_REFUSED
from runbooks.core.ports import PAUSED
from tests.fakes import Crash, RunbookEnv, with_streams
from tests.helpers.streams import APPS, BUCKET_PARAM, streams_document

P, S = "us-east-1", "us-west-2"


@pytest.fixture
def env(tmp_path):
    e = RunbookEnv(tmp_path, streams_document(), "--yes", setup=with_streams)
    e.streams = e.world.streams
    return e


def on(env, region: str) -> bool:
    s = env.streams
    kafka = all(s.params[p] == f"b-1.{region}.kafka:9098" for p in APPS)
    return kafka and s.params[BUCKET_PARAM] == f"regionpair-{'prod' if region == P else 'dr'}-data"


def names(actions, *kinds):
    return [a for a in actions if a[0] in kinds]


def test_failover_stops_the_flows_translates_groups_then_moves_clients(env):
    code, out = env.run(failover)
    assert code == EXIT_OK, out
    assert on(env, S)
    assert not env.streams.kafka.running and not env.streams.objects.running
    assert set(env.streams.group_offsets[S]) == {"ledger", "audit"}
    steps = [s["name"] for s in out["steps"]]
    assert steps.index("kafka-stop:replication") < steps.index("kafka-offsets:groups") \
        < steps.index("kafka-clients:checkout")
    assert steps.index("objects-stop:replication") < steps.index("objects-writers:checkout")
    gates = {g["name"]: g for g in json.load(open(out["report"]["json"]))["gates"]}
    assert gates["kafka-replicator"]["passed"] and gates["s3-replication"]["passed"]
    offsets = next(s for s in out["steps"] if s["name"] == "kafka-offsets:groups")
    assert "ledger: offsets in us-west-2" in offsets["result"] and "3 records will be seen again" in offsets["result"]


def test_without_streaming_ports_the_plan_is_the_database_plan(env):
    env.world.streams = None
    code, out = env.run(failover)
    assert code == EXIT_OK
    assert not [s for s in out["steps"] if s["name"].startswith(("kafka", "objects"))]
    assert not names(env.world.actions, "kafka-stop", "publish", "s3-stop")


def test_replicator_lag_beyond_the_rpo_is_refused_and_changes_nothing(env):
    env.streams.stuck["kafka"] = True
    env.streams.kafka.lag_records, env.streams.kafka.lag_seconds = 90_000, 400.0
    code, out = env.run(failover)
    assert code == EXIT_REFUSED
    assert "Kafka replicator is 400.0 s behind (90000 records)" in out["error"] and "--force" in out["error"]
    assert env.world.actions == []


def test_a_group_whose_last_checkpoint_trails_it_beyond_the_rpo_is_refused_and_force_overrides(env):
    rpo = env.world.outputs.objectives.rpo_seconds
    env.streams.kafka.groups = {
        "ledger": {"checkpoint_age_s": rpo + 7.5, "consumed_since_checkpoint": 420, "has_offsets_on_source": True},
        "audit": {"checkpoint_age_s": 0.4, "consumed_since_checkpoint": 3, "has_offsets_on_source": True}}
    code, out = env.run(failover)
    assert code == EXIT_REFUSED
    assert f"ledger's last checkpoint is {rpo + 7.5:.1f} s old and it consumed 420 records" in out["error"]
    assert f"threshold: the RPO, {rpo} s" in out["error"] and "--force" in out["error"]
    assert "audit" not in out["error"].split("threshold")[0]
    assert env.world.actions == []
    code, out = env.run(failover, "--force")
    assert code == EXIT_OK, out


def test_an_old_checkpoint_of_a_group_that_consumed_nothing_since_passes(env):
    env.streams.kafka.groups = {
        "ledger": {"checkpoint_age_s": 600.0, "consumed_since_checkpoint": 0, "has_offsets_on_source": True},
        "audit": {"checkpoint_age_s": None, "consumed_since_checkpoint": 0, "has_offsets_on_source": False}}
    code, out = env.run(failover)
    assert code == EXIT_OK, out
    gates = {g["name"]: g for g in json.load(open(out["report"]["json"]))["gates"]}
    assert gates["kafka-checkpoints"]["passed"] and "ledger: checkpoint current" in gates["kafka-checkpoints"]["sentence"]


NO_SYNC = "MirrorMaker 2 has written no offset sync for it"


def _missing_partition_view(reason: str = NO_SYNC) -> dict:
    return {"ledger": {"checkpoint_age_s": 0.5, "consumed_since_checkpoint": 2, "has_offsets_on_source": True,
                       "without_checkpoint": {"orders:3": {"committed": 41, "reason": reason}}},
            "audit": {"checkpoint_age_s": 0.4, "consumed_since_checkpoint": 0, "has_offsets_on_source": True,
                      "without_checkpoint": {}}}


def test_a_group_with_a_partition_never_checkpointed_is_refused_by_name_with_the_reason_and_force(env):
    env.streams.kafka.groups = _missing_partition_view()
    start = env.world.clock.monotonic()
    code, out = env.run(failover)
    assert code == EXIT_REFUSED
    err = out["error"]
    assert "ledger has no checkpoint from MirrorMaker 2 in us-west-2 for orders:3 (committed at 41)" in err, err
    assert NO_SYNC in err and "auto.offset.reset" in err and "--force" in err and "by hand" in err
    assert "audit" not in err.split("kafka-checkpoints")[-1]
    # judged again while the source answered, for the configured wait, then refused
    assert env.world.clock.monotonic() - start >= 10.0 and "still, after waiting" in err
    assert env.world.actions == []
    code, out = env.run(failover, "--force")
    assert code == EXIT_OK, out


def test_a_group_never_checkpointed_is_refused_at_once_when_the_source_is_gone(env):
    env.streams.kafka.groups = _missing_partition_view("the group's offset 41 is older than MirrorMaker 2's oldest")
    env.world.kill_region(P)
    start = env.world.clock.monotonic()
    code, out = env.run(failover)
    assert code == EXIT_REFUSED
    assert "ledger has no checkpoint" in out["error"] and "older than MirrorMaker 2's oldest" in out["error"]
    assert "waiting" not in out["error"] and env.world.clock.monotonic() - start < 10.0


def test_a_checkpoint_that_arrives_while_the_gate_waits_passes(env):
    first = env.world.clock.monotonic()
    current = {"ledger": {"checkpoint_age_s": 0.2, "consumed_since_checkpoint": 1, "has_offsets_on_source": True,
                          "without_checkpoint": {}},
               "audit": {"checkpoint_age_s": 0.2, "consumed_since_checkpoint": 0, "has_offsets_on_source": True}}
    env.streams.kafka.groups = lambda now: _missing_partition_view() if now < first + 3.0 else current
    code, out = env.run(failover)
    assert code == EXIT_OK, out
    gates = {g["name"]: g for g in json.load(open(out["report"]["json"]))["gates"]}
    sentence = gates["kafka-checkpoints"]["sentence"]
    assert gates["kafka-checkpoints"]["passed"] and "after waiting" in sentence and "ledger: checkpoint" in sentence


def test_with_the_source_gone_a_view_read_before_the_gate_began_is_read_again(env):
    """Seen on the sandbox: a region killed a second after MirrorMaker 2 checkpointed the group on
    the target, and the supervisor's status, busy probing the dead source, still without it."""
    first = env.world.clock.monotonic()

    def view(now):
        if now < first + 1.0:  # the supervisor's status, read from the target before the fault
            v = _missing_partition_view("MirrorMaker 2 has not checkpointed it yet")
            return {g: dict(x, read_at=first - 0.5) for g, x in v.items()}
        return {g: {"checkpoint_age_s": 1.2, "consumed_since_checkpoint": 0, "has_offsets_on_source": True,
                    "without_checkpoint": {}, "read_at": now} for g in ("ledger", "audit")}
    env.streams.kafka.groups = view
    env.world.kill_region(P)
    code, out = env.run(failover)
    assert code == EXIT_OK, out
    gates = {g["name"]: g for g in json.load(open(out["report"]["json"]))["gates"]}
    assert "after waiting" in gates["kafka-checkpoints"]["sentence"]


def test_a_stale_checkpoint_passes_once_the_source_is_gone_naming_its_age(env):
    rpo = env.world.outputs.objectives.rpo_seconds
    env.streams.kafka.groups = {
        "ledger": {"checkpoint_age_s": rpo + 3.0, "consumed_since_checkpoint": 50, "has_offsets_on_source": True},
        "audit": {"checkpoint_age_s": 0.4, "consumed_since_checkpoint": 0, "has_offsets_on_source": True}}
    env.world.kill_region(P)
    code, out = env.run(failover)
    assert code == EXIT_OK, out
    gates = {g["name"]: g for g in json.load(open(out["report"]["json"]))["gates"]}
    assert f"resumes from its last checkpoint, {rpo + 3.0:.1f} s old" in gates["kafka-checkpoints"]["sentence"]


def test_s3_backlog_beyond_the_rpo_is_refused(env):
    env.streams.stuck["objects"] = True
    env.streams.objects.lag_records, env.streams.objects.lag_seconds = 12, 301.0
    code, out = env.run(failover)
    assert code == EXIT_REFUSED and "S3 replication is 301.0 s behind (12 object versions)" in out["error"]


def test_region_outage_reports_what_never_left_the_lost_region(env):
    s = env.streams
    s.stuck.update(kafka=True, objects=True)
    s.kafka.lag_records, s.kafka.lag_seconds = 37, 0.4
    s.objects.lag_records, s.objects.lag_seconds, s.objects.pending = 2, 0.9, ("drill/a", "drill/b")
    env.world.kill_region(P)
    code, out = env.run(failover)
    assert code == EXIT_OK, out
    assert on(env, S)
    stop = next(x for x in out["steps"] if x["name"] == "objects-stop:replication")
    assert "2 not copied at the stop" in stop["result"]
    journal = next((env.state / "runs").glob("failover-*.jsonl")).read_text()
    assert '"objects_pending_at_failover"' in journal and "drill/b" in journal
    assert '"kafka_lag_at_failover": {"records": 37' in journal


def test_groups_without_dr_offsets_stop_the_kafka_lane_before_clients_move(env):
    env.streams.translatable = False
    code, out = env.run(failover)
    assert code == EXIT_FAILED and "ledger, audit" in out["error"] and "auto.offset.reset" in out["error"]
    assert all(env.streams.params[p] == f"b-1.{P}.kafka:9098" for p in APPS), "consumers moved without offsets"
    env.streams.translatable = True
    code, out = env.run(failover)
    assert code == EXIT_OK and on(env, S)


@pytest.mark.parametrize("action,nth", [("kafka-stop", 1), ("kafka-offsets", 1), ("publish", 1), ("publish", 2),
                                        ("s3-stop", 1), ("writers", 1)])
def test_failover_crash_at_any_kafka_or_s3_step_then_rerun_finishes(env, action, nth):
    env.world.crash_on = (action, nth)
    with pytest.raises(Crash):
        env.run(failover)
    code, out = env.run(failover)
    assert code == EXIT_OK, out
    assert on(env, S) and not env.streams.kafka.running and not env.streams.objects.running
    assert len(names(env.world.actions, "kafka-stop")) == 1
    assert len(names(env.world.actions, "publish")) == 2


def test_switchover_pauses_drains_moves_then_protects(env):
    code, out = env.run(switchover)
    assert code == EXIT_OK, out
    assert on(env, S)
    acts = names(env.world.actions, "publish", "kafka-stop", "kafka-offsets", "kafka-start")
    assert acts == [("publish", APPS[0], PAUSED), ("publish", APPS[1], PAUSED), ("kafka-stop",),
                    ("kafka-offsets", S), ("publish", APPS[0], f"b-1.{S}.kafka:9098"),
                    ("publish", APPS[1], f"b-1.{S}.kafka:9098"), ("kafka-start", S, P)]
    assert (env.streams.kafka.source, env.streams.kafka.target, env.streams.kafka.running) == (S, P, True)
    assert (env.streams.objects.source, env.streams.objects.target, env.streams.objects.running) == (S, P, True)
    drain = next(s for s in out["steps"] if s["name"] == "kafka-drain:replication")
    assert "waited 2 s for clients to pause" in drain["result"]


def test_switchover_does_not_cut_over_while_the_replicator_has_records_left(env):
    env.streams.stuck["kafka"] = True
    env.streams.kafka.lag_records = 5
    code, out = env.run(switchover)
    assert code == EXIT_FAILED and "Kafka replicator to copy everything" in out["error"]
    assert all(env.streams.params[p] == PAUSED for p in APPS), "paused, not moved: nothing is split"
    assert env.streams.kafka.running
    env.streams.stuck["kafka"] = False
    code, out = env.run(switchover)
    assert code == EXIT_OK and on(env, S)


def test_failback_reverses_the_flows_before_the_switch(env):
    assert env.run(failover)[0] == EXIT_OK
    n = len(env.world.actions)
    code, out = env.run(failback)
    assert code == EXIT_OK, out
    assert on(env, P)
    kafka = names(env.world.actions[n:], "kafka-start", "publish", "kafka-stop")
    home = f"b-1.{P}.kafka:9098"
    assert kafka == [("kafka-start", S, P), ("publish", APPS[0], PAUSED), ("publish", APPS[1], PAUSED),
                     ("kafka-stop",), ("publish", APPS[0], home), ("publish", APPS[1], home), ("kafka-start", P, S)]
    objects = names(env.world.actions[n:], "s3-start", "writers", "s3-stop")
    assert objects == [("s3-start", S, P), ("writers", BUCKET_PARAM, PAUSED), ("s3-stop",),
                       ("writers", BUCKET_PARAM, "regionpair-prod-data"), ("s3-start", P, S)]
    assert (env.streams.kafka.source, env.streams.kafka.target) == (P, S)


@pytest.mark.parametrize("action,nth", [("kafka-start", 1), ("publish", 2), ("kafka-stop", 1), ("publish", 3),
                                        ("s3-start", 1), ("writers", 2), ("kafka-start", 2), ("s3-start", 2)])
def test_failback_crash_at_any_kafka_or_s3_step_then_rerun_finishes(env, action, nth):
    assert env.run(failover)[0] == EXIT_OK
    env.world._counts.clear()
    env.world.crash_on = (action, nth)
    with pytest.raises(Crash):
        env.run(failback)
    code, out = env.run(failback)
    assert code == EXIT_OK, out
    assert on(env, P)
    assert (env.streams.kafka.source, env.streams.kafka.target, env.streams.kafka.running) == (P, S, True)
    assert (env.streams.objects.source, env.streams.objects.target, env.streams.objects.running) == (P, S, True)


def test_failback_refused_while_home_region_is_down_changes_no_stream(env):
    env.world.kill_region(P)
    assert env.run(failover)[0] == EXIT_OK
    n = len(env.world.actions)
    code, out = env.run(failback)
    assert code == EXIT_REFUSED
    assert env.world.actions[n:] == []


def test_bad_streaming_outputs_are_refused_with_the_field(tmp_path):
    doc = streams_document()
    doc["regions"][S]["streaming"]["client_refresh_seconds"] = -1
    with pytest.raises(contract.OutputsError, match=f"regions.{S}.streaming.client_refresh_seconds"):
        contract.from_dict(doc)
    doc = streams_document()
    doc["regions"][S]["streaming"]["consumer_groups"] = "ledger"
    with pytest.raises(contract.OutputsError, match="consumer_groups: expected a list of strings"):
        contract.from_dict(doc)
    assert EXIT_BAD_INPUT == 2


def test_failover_goes_on_when_the_lost_regions_s3_rule_cannot_be_disabled(env, monkeypatch):
    """In AWS the replication rule lives on the lost region's bucket: like fencing the lost primary,
    disabling it is best effort in a failover (recorded), and writers still move to DR."""
    from runbooks.core.errors import Unreachable
    from tests.fakes import FakeObjects

    def unreachable(self):
        raise Unreachable("S3 in us-east-1 does not answer")
    monkeypatch.setattr(FakeObjects, "stop_flow", unreachable)
    env.streams.stuck["objects"] = True
    env.world.kill_region(P)
    code, out = env.run(failover)
    assert code == EXIT_OK, out
    assert on(env, S)
    stop = next(x for x in out["steps"] if x["name"] == "objects-stop:replication")
    assert stop["status"] == "best-effort-failed" and "does not answer" in stop["result"]


def test_switchover_stops_when_s3_replication_cannot_be_disabled(env, monkeypatch):
    from runbooks.core.errors import Unreachable
    from tests.fakes import FakeObjects

    def unreachable(self):
        raise Unreachable("S3 in us-east-1 does not answer")
    monkeypatch.setattr(FakeObjects, "stop_flow", unreachable)
    code, out = env.run(switchover)
    assert code != EXIT_OK
    assert env.streams.params[BUCKET_PARAM] != "regionpair-dr-data"


def test_failback_waits_for_the_reversed_flows_to_catch_up_before_pausing_anyone(env):
    """A home cluster or bucket that came back empty is re-seeded by the reversed flow: clients are
    paused only once it is close behind, so the pause drains seconds, not the whole copy."""
    assert env.run(failover)[0] == EXIT_OK
    env.streams.stuck["kafka"] = True
    env.streams.kafka.lag_records, env.streams.kafka.lag_seconds = 40_000, 900.0
    code, out = env.run(failback)
    assert code == EXIT_FAILED and "Kafka replicator to catch up with us-west-2" in out["error"]
    assert all(env.streams.params[p] == f"b-1.{S}.kafka:9098" for p in APPS), "paused while far behind"
    assert (env.streams.kafka.source, env.streams.kafka.target, env.streams.kafka.running) == (S, P, True)
    env.streams.stuck["kafka"] = False
    code, out = env.run(failback)
    assert code == EXIT_OK, out
    assert on(env, P)
    steps = [s["name"] for s in out["steps"]]
    assert steps.index("kafka-catch-up:replication") < steps.index("kafka-pause:checkout")
    assert steps.index("objects-seed:replication") < steps.index("objects-catch-up:replication") \
        < steps.index("objects-pause:checkout")


def test_failback_refuses_to_move_writers_home_when_the_adapter_cannot_see_the_bucket_seeded(env):
    """AWS with stacks that declare no seeding role: CRR copies no version written before its rule;
    without the operator's confirmation that they copied them, writers stay in DR (the other lanes
    go home) and no job is started."""
    assert env.run(failover)[0] == EXIT_OK
    env.streams.seeded = None
    code, out = env.run(failback)
    assert code == EXIT_FAILED and "run the fake batch job, then pass --objects-seeded" in out["error"]
    assert env.streams.params[BUCKET_PARAM] == "regionpair-dr-data"
    assert env.streams.seed_jobs == [] and not names(env.world.actions, "seed-job")
    assert all(env.streams.params[p] == f"b-1.{P}.kafka:9098" for p in APPS)
    code, out = env.run(failback, "--objects-seeded")
    assert code == EXIT_OK, out
    assert on(env, P)
    seed = next(s for s in out["steps"] if s["name"] == "objects-seed:replication")
    assert seed["result"].startswith("confirmed by the operator (--objects-seeded)")
    audit = (env.state / "audit.jsonl").read_text()
    assert "--objects-seeded" in audit


def journal_events(env, event):
    return [json.loads(line) for path in sorted((env.state / "runs").glob("failback-*.jsonl"))
            for line in path.read_text().splitlines() if json.loads(line)["event"] == event]


def test_failback_starts_one_seeding_job_waits_for_it_then_moves_writers_home(env):
    """AWS with the role declared: the step starts the job itself, records it in the journal before
    waiting, and writers move home only after it finished with every task done."""
    assert env.run(failover)[0] == EXIT_OK
    env.streams.seeded, env.streams.batch_role = None, True
    code, out = env.run(failback)
    assert code == EXIT_OK, out
    assert on(env, P)
    assert len(env.streams.seed_jobs) == 1 and len(names(env.world.actions, "seed-job")) == 1
    assert env.streams.seed_jobs[0]["token"] == out["run_id"]  # the run id makes a rerun find it
    seed = next(s for s in out["steps"] if s["name"] == "objects-seed:replication")
    assert "fake job job-1 is Complete" in seed["result"] and "started" in seed["result"]
    (noted,) = journal_events(env, "objects-seed-job")
    assert (noted["job_id"], noted["created"], noted["attempt"]) == ("job-1", True, 1)
    steps = [s["name"] for s in out["steps"]]
    assert steps.index("objects-replicate:replication") < steps.index("objects-seed:replication") \
        < steps.index("objects-pause:checkout")


def test_a_seeding_job_with_failed_tasks_keeps_writers_in_dr_and_a_rerun_starts_the_next_attempt(env):
    assert env.run(failover)[0] == EXIT_OK
    env.streams.seeded, env.streams.batch_role = None, True
    env.streams.seed_failures = [4]
    code, out = env.run(failback)
    assert code == EXIT_FAILED
    assert "fake job job-1 is Complete with 4 failed task(s); report s3://fake-reports/job-job-1/" in out["error"]
    assert env.streams.params[BUCKET_PARAM] == "regionpair-dr-data", "writers moved home over a failed seeding"
    code, out = env.run(failback)
    assert code == EXIT_OK, out
    assert on(env, P)
    assert [(j["id"], j["attempt"], j["failed"]) for j in env.streams.seed_jobs] == [("job-1", 1, 4), ("job-2", 2, 0)]


def test_killed_while_waiting_for_the_seeding_job_the_rerun_waits_for_the_same_job(env, monkeypatch):
    from tests.fakes import FakeObjects
    assert env.run(failover)[0] == EXIT_OK
    env.streams.seeded, env.streams.batch_role = None, True
    original = FakeObjects.seed_job

    def killed_once(self, *args, **kw):
        monkeypatch.setattr(FakeObjects, "seed_job", original)
        raise Crash("killed while waiting for the seeding job")
    monkeypatch.setattr(FakeObjects, "seed_job", killed_once)
    with pytest.raises(Crash):
        env.run(failback)
    assert len(env.streams.seed_jobs) == 1
    code, out = env.run(failback)
    assert code == EXIT_OK, out
    assert on(env, P)
    assert len(env.streams.seed_jobs) == 1, "the rerun started a second job"
    seed = next(s for s in out["steps"] if s["name"] == "objects-seed:replication")
    assert "found again" in seed["result"]


def test_a_seeding_job_still_running_at_the_deadline_is_waited_for_again_by_the_rerun(env):
    assert env.run(failover)[0] == EXIT_OK
    env.streams.seeded, env.streams.batch_role = None, True
    env.streams.seed_reads = 10_000
    code, out = env.run(failback)
    assert code == EXIT_FAILED and "fake job job-1 is Active: not finished after 21600 s" in out["error"]
    assert "waits for this same job" in out["error"]
    assert env.streams.params[BUCKET_PARAM] == "regionpair-dr-data"
    env.streams.seed_reads = 0
    code, out = env.run(failback)
    assert code == EXIT_OK, out
    assert len(env.streams.seed_jobs) == 1


def test_objects_seeded_overrides_the_job_for_operators_who_copied_them_another_way(env):
    assert env.run(failover)[0] == EXIT_OK
    env.streams.seeded, env.streams.batch_role = None, True
    code, out = env.run(failback, "--objects-seeded")
    assert code == EXIT_OK, out
    assert env.streams.seed_jobs == []
    seed = next(s for s in out["steps"] if s["name"] == "objects-seed:replication")
    assert seed["result"].startswith("confirmed by the operator (--objects-seeded)")


def test_objects_seeded_is_a_failback_option_only(env, capsys):
    with pytest.raises(SystemExit) as exc:
        env.run(failover, "--objects-seeded")
    assert exc.value.code == 2 and "unrecognized arguments: --objects-seeded" in capsys.readouterr().err
    assert env.world.actions == []


def test_a_flow_steady_within_the_rpo_but_above_the_threshold_counts_as_caught_up(env):
    """S3's lag is coarse (and RTC promises minutes): a lag that stopped shrinking but is within the
    RPO is paused for and drained, rather than waited on until the step times out."""
    assert env.run(failover)[0] == EXIT_OK
    env.streams.stuck["objects"] = True
    env.streams.objects.lag_records, env.streams.objects.lag_seconds = 3, 40.0  # RPO 300 s, threshold 5 s

    def drained_once_paused(kind="objects", original=env.streams.read):
        if env.streams.params.get(BUCKET_PARAM) == PAUSED:
            env.streams.stuck["objects"] = False
        return original(kind)
    env.streams.read = drained_once_paused
    code, out = env.run(failback)
    assert code == EXIT_OK, out
    catch_up = next(s for s in out["steps"] if s["name"] == "objects-catch-up:replication")
    assert "no longer gaining" in catch_up["result"] and "within the RPO of 300 s" in catch_up["result"]
    assert on(env, P)
