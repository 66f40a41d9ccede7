"""The store against the real PostgreSQL: coalescing, monotonic modifiedOn, SKIP LOCKED claims,
lease expiry, compare-and-set transitions, history."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import asyncpg

from daemon.store.rows import Finished, RecordError, RecordKey, RecordUpsert, Requeue, Synced
from daemon.store.store import Store
from statemachine import FieldMapping, JobFacts, ProjectFacts, Settings, State, desired_for_job, desired_for_project

T0 = datetime(2026, 11, 25, 16, 0, tzinfo=UTC)
LEASE = timedelta(seconds=60)


def project_row(st_id: int, *, name: str = "Proj", modified: datetime = T0, priority: int = 0) -> RecordUpsert:
    facts = ProjectFacts(id=st_id, number=f"P{st_id}", name=name, customer_id=1, customer_name="Cust")
    return RecordUpsert("project", st_id, facts.number, name, 1, "Cust", None, True, T0, modified,
                        desired_for_project(facts, Settings(), FieldMapping()), priority)


def job_row(st_id: int, project: int | None = None, *, number: str | None = None,
            modified: datetime = T0, priority: int = 0) -> RecordUpsert:
    number = number or str(st_id)
    facts = JobFacts(id=st_id, number=number, project_id=project, customer_id=1, customer_name="Cust")
    parent = None if project is None else ProjectFacts(project, f"P{project}", "Proj", 1, "Cust")
    return RecordUpsert("job", st_id, number, None, 1, "Cust", project, True, T0, modified,
                        desired_for_job(facts, parent, Settings(), FieldMapping()), priority)


async def claim_all(store: Store, owner: str = "w1", limit: int = 100) -> list[RecordKey]:
    return [r.key for r in await store.claim_batch(owner, limit, LEASE)]


async def sync_ok(store: Store, owner: str, keys: list[RecordKey]) -> None:
    records = await store.get_many(keys)
    await store.mark_synced(owner, [
        Synced(k, records[k].desired_hash, records[k].desired, 1000 + i) for i, k in enumerate(keys)
    ], {k: records[k].claim_id for k in keys})


async def test_upsert_inserts_pending_with_history(store: Store) -> None:
    result = await store.upsert([job_row(1), job_row(2)])
    assert sorted(result.inserted) == [RecordKey("job", 1), RecordKey("job", 2)]
    rec = await store.get(RecordKey("job", 1))
    assert rec is not None and rec.state is State.PENDING
    assert rec.desired["PROJECTID"] == "J-1" and rec.intacct_project_id == "J-1"
    history = await store.history(RecordKey("job", 1))
    assert [(h.from_state, h.to_state) for h in history] == [(None, "pending")]


async def test_pending_record_is_coalesced_not_duplicated(store: Store, pool: asyncpg.Pool) -> None:
    await store.upsert([job_row(1, number="100")])
    later = T0 + timedelta(minutes=1)
    result = await store.upsert([job_row(1, number="101", modified=later), job_row(1, number="100")])
    assert result.updated == [RecordKey("job", 1)]
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM records") == 1
    rec = await store.get(RecordKey("job", 1))
    assert rec is not None and rec.st_number == "101" and rec.state is State.PENDING


async def test_older_modified_on_never_overwrites_newer(store: Store) -> None:
    later = T0 + timedelta(minutes=5)
    await store.upsert([job_row(1, number="new", modified=later)])
    result = await store.upsert([job_row(1, number="old", modified=T0)])
    assert result.ignored == [RecordKey("job", 1)]
    rec = await store.get(RecordKey("job", 1))
    assert rec is not None and rec.st_number == "new"


async def test_repeated_rows_are_idempotent(store: Store) -> None:
    await store.upsert([job_row(1)])
    for _ in range(3):
        result = await store.upsert([job_row(1)])
        assert result.ignored == [RecordKey("job", 1)]
    assert len(await store.history(RecordKey("job", 1))) == 1


async def test_synced_record_with_changed_fields_goes_back_to_pending(store: Store) -> None:
    await store.upsert([project_row(7, name="Old")])
    keys = await claim_all(store)
    await sync_ok(store, "w1", keys)
    assert (await store.get(RecordKey("project", 7))).state is State.SYNCED  # type: ignore[union-attr]
    # Same fields, newer modifiedOn (e.g. a status change in ST): nothing to send.
    await store.upsert([project_row(7, name="Old", modified=T0 + timedelta(minutes=1))])
    assert (await store.get(RecordKey("project", 7))).state is State.SYNCED  # type: ignore[union-attr]
    # Renamed: Intacct must change.
    result = await store.upsert([project_row(7, name="New", modified=T0 + timedelta(minutes=2))])
    assert result.requeued == [RecordKey("project", 7)]
    rec = await store.get(RecordKey("project", 7))
    assert rec is not None and rec.state is State.PENDING and rec.desired["NAME"] == "New"
    assert rec.synced_fields is not None and rec.synced_fields["NAME"] == "Old"


async def test_cursor_is_stored_with_the_page(store: Store) -> None:
    await store.upsert([job_row(1)], cursor=("jobs", "tok-1"))
    assert await store.get_cursor("jobs") == "tok-1"
    await store.upsert([], cursor=("jobs", "tok-2"))
    assert await store.get_cursor("jobs") == "tok-2"


async def test_only_tracked_rows_are_not_inserted(store: Store) -> None:
    await store.upsert([job_row(1)])
    later = T0 + timedelta(minutes=1)
    keys = [RecordKey("job", 1), RecordKey("job", 2)]
    result = await store.upsert([job_row(1, number="x", modified=later), job_row(2)], only_tracked=keys)
    assert result.updated == [RecordKey("job", 1)] and result.ignored == [RecordKey("job", 2)]
    assert await store.get(RecordKey("job", 2)) is None


async def test_claim_takes_parents_first_and_jobs_wait_for_their_parent(store: Store) -> None:
    await store.upsert([job_row(11, project=7), job_row(12, project=7), job_row(13), project_row(7)])
    # A small claim: the project and the parentless job, never a job without its parent.
    first = await store.claim_batch("w1", 2, LEASE)
    assert [r.key for r in first] == [RecordKey("project", 7), RecordKey("job", 11)] or \
        [r.kind for r in first][0] == "project"
    assert first[0].key == RecordKey("project", 7)
    # The jobs of project 7 travel only in the claim that carries project 7 itself.
    assert all(r.st_project_id in (None, 7) for r in first)
    # Another worker cannot take jobs whose parent is in flight with someone else.
    other = await store.claim_batch("w2", 10, LEASE)
    assert all(r.st_project_id is None for r in other)
    await sync_ok(store, "w1", [r.key for r in first if r.kind == "project"])
    rest = await store.claim_batch("w2", 10, LEASE)
    assert {r.key for r in rest} | {r.key for r in first} | {r.key for r in other} == {
        RecordKey("project", 7), RecordKey("job", 11), RecordKey("job", 12), RecordKey("job", 13)}


async def test_a_job_and_its_parent_travel_in_one_claim(store: Store) -> None:
    await store.upsert([project_row(7), job_row(11, project=7), job_row(12, project=7)])
    batch = await store.claim_batch("w1", 10, LEASE)
    assert [r.key for r in batch] == [RecordKey("project", 7), RecordKey("job", 11), RecordKey("job", 12)]


async def test_priority_first(store: Store) -> None:
    await store.upsert([job_row(i) for i in range(1, 6)])
    await store.upsert([job_row(99, priority=10)])
    batch = await store.claim_batch("w1", 1, LEASE)
    assert batch[0].key == RecordKey("job", 99)


async def test_concurrent_claimers_never_share_a_record(store: Store, pool: asyncpg.Pool) -> None:
    await store.upsert([job_row(i) for i in range(1, 501)])

    async def claimer(name: str) -> list[RecordKey]:
        got: list[RecordKey] = []
        while batch := await store.claim_batch(name, 7, LEASE):
            got += [r.key for r in batch]
        return got

    results = await asyncio.gather(*(claimer(f"w{i}") for i in range(8)))
    claimed = [k for r in results for k in r]
    assert len(claimed) == 500 and len(set(claimed)) == 500
    assert sum(1 for r in results if r) > 1  # the work really was spread over several claimers
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM records WHERE state = 'syncing'") == 500


async def test_stale_transition_is_refused(store: Store) -> None:
    await store.upsert([job_row(1)])
    [rec] = await store.claim_batch("w1", 10, LEASE)
    # A worker that does not hold the lease cannot finish the claim.
    assert await store.mark_synced("intruder", [Synced(rec.key, rec.desired_hash, rec.desired, 1)],
        {rec.key: rec.claim_id}) == {}
    # The holder can, once; a second (replayed) success changes nothing.
    assert await store.mark_synced("w1", [Synced(rec.key, rec.desired_hash, rec.desired, 1)],
        {rec.key: rec.claim_id}) == {
        rec.key: State.SYNCED}
    assert await store.mark_synced("w1", [Synced(rec.key, rec.desired_hash, rec.desired, 1)],
        {rec.key: rec.claim_id}) == {}
    assert await store.finish("w1", [Finished(rec.key, State.FAILED, "late", rec.desired_hash)],
        {rec.key: rec.claim_id}) == {}
    final = await store.get(rec.key)
    assert final is not None and final.state is State.SYNCED


async def test_claim_cannot_end_in_a_state_the_table_forbids(store: Store) -> None:
    await store.upsert([job_row(1)])
    [rec] = await store.claim_batch("w1", 10, LEASE)
    try:
        await store.finish("w1", [Finished(rec.key, State.SYNCED, "cheat", rec.desired_hash)],
        {rec.key: rec.claim_id})
    except ValueError:
        pass
    else:
        raise AssertionError("finish() accepted syncing -> synced without mark_synced")


async def test_change_while_syncing_goes_back_to_pending(store: Store) -> None:
    await store.upsert([job_row(1, number="a")])
    [rec] = await store.claim_batch("w1", 10, LEASE)
    await store.upsert([job_row(1, number="b", modified=T0 + timedelta(seconds=1))])
    landed = await store.mark_synced("w1", [Synced(rec.key, rec.desired_hash, rec.desired, 5)],
        {rec.key: rec.claim_id})
    assert landed == {rec.key: State.PENDING}
    final = await store.get(rec.key)
    assert final is not None and final.synced_fields == rec.desired and final.desired["PROJECTID"] == "J-b"


async def test_lease_expiry_returns_to_pending_and_verifies(store: Store, pool: asyncpg.Pool) -> None:
    await store.upsert([job_row(1), job_row(2)])
    await store.claim_batch("dead", 10, timedelta(milliseconds=50))
    assert await store.expire_leases() == 0 or True  # may already have expired on a slow machine
    await asyncio.sleep(0.1)
    await store.expire_leases()
    for key in (RecordKey("job", 1), RecordKey("job", 2)):
        rec = await store.get(key)
        assert rec is not None and rec.state is State.PENDING and rec.verify_first and rec.lease_owner is None
        assert [h.reason for h in await store.history(key)][0] == "lease expired"
    # The dead worker's late answer is refused.
    assert await store.mark_synced("dead", [Synced(RecordKey("job", 1), "x", {}, 1)], {}) == {}


async def test_heartbeat_keeps_a_lease_alive(store: Store) -> None:
    await store.upsert([job_row(1)])
    await store.claim_batch("w1", 10, timedelta(milliseconds=300))
    for _ in range(4):
        await asyncio.sleep(0.1)
        assert await store.renew_leases("w1", timedelta(milliseconds=300)) == 1
        assert await store.expire_leases() == 0
    rec = await store.get(RecordKey("job", 1))
    assert rec is not None and rec.state is State.SYNCING


async def test_transient_retry_backoff_and_fail(store: Store) -> None:
    await store.upsert([job_row(1)])
    [rec] = await store.claim_batch("w1", 10, LEASE)
    error = RecordError.from_json({"class": "transient", "errorno": None, "description": "HTTP 503",
                                   "description2": None, "correction": None})
    await store.finish("w1", [Finished(rec.key, State.PENDING, "transient error", rec.desired_hash,
                                       error=error, delay_s=30)],
        {rec.key: rec.claim_id})
    after = await store.get(rec.key)
    assert after is not None and after.state is State.PENDING and after.attempts == 1
    assert after.next_attempt_at is not None and after.last_error == error
    assert await store.claim_batch("w1", 10, LEASE) == []  # backing off
    due = await store.next_due()
    assert due is not None and due > datetime.now(UTC) + timedelta(seconds=20)


async def test_permanent_failure_then_operator_retry(store: Store) -> None:
    await store.upsert([job_row(1)])
    [rec] = await store.claim_batch("w1", 10, LEASE)
    await store.finish("w1", [Finished(rec.key, State.FAILED, "permanent error", rec.desired_hash,
                                       error=RecordError("permanent", None, "BL01001973"))],
        {rec.key: rec.claim_id})
    assert (await store.counts())["failed"] == 1
    assert await store.retry_failed([rec.key]) == [rec.key]
    rec2 = await store.get(rec.key)
    assert rec2 is not None and rec2.state is State.PENDING and rec2.attempts == 0
    assert await store.retry_failed([rec.key]) == []  # not failed any more: refused


async def test_failure_of_outdated_fields_is_moot(store: Store) -> None:
    await store.upsert([job_row(1, number="a")])
    [rec] = await store.claim_batch("w1", 10, LEASE)
    await store.upsert([job_row(1, number="b", modified=T0 + timedelta(seconds=1))])
    landed = await store.finish("w1", [Finished(rec.key, State.FAILED, "permanent", rec.desired_hash)],
        {rec.key: rec.claim_id})
    assert landed == {rec.key: State.PENDING}


async def test_connection_lost_blocks_and_restore_resumes(store: Store) -> None:
    await store.upsert([job_row(i) for i in range(1, 4)])
    [a] = await store.claim_batch("w1", 1, LEASE)
    error = RecordError("connection", "Sign-in information is incorrect", "XL03000006")
    # The worker holding a claim blocks its own; the queue is blocked as a whole.
    await store.finish("w1", [Finished(a.key, State.BLOCKED, "connection error", a.desired_hash, error=error,
                                       refund_attempt=True)], {a.key: a.claim_id})
    assert await store.block_pending(error, "connection error") == 2
    counts = await store.counts()
    assert counts["blocked-by-connection"] == 3 and counts["pending"] == 0
    assert await store.claim_batch("w1", 10, LEASE) == []
    # A change in ST updates a blocked record and it stays blocked.
    await store.upsert([job_row(2, number="zz", modified=T0 + timedelta(seconds=1))])
    rec = await store.get(RecordKey("job", 2))
    assert rec is not None and rec.state is State.BLOCKED and rec.desired["PROJECTID"] == "J-zz"
    assert await store.unblock_all() == 3
    blocked_a = await store.get(a.key)
    assert blocked_a is not None and blocked_a.attempts == 0  # a connection error is not an attempt
    assert len(await store.claim_batch("w1", 10, LEASE)) == 3


async def test_requeue_for_repair(store: Store) -> None:
    await store.upsert([project_row(7, name="Name")])
    keys = await claim_all(store)
    await sync_ok(store, "w1", keys)
    actual = {"PROJECTID": "P-P7", "NAME": "Renamed in Intacct", "PARENTID": None, "CUSTOMERID": None,
              "STATUS": "active"}
    done = await store.requeue([Requeue(RecordKey("project", 7), actual, was_read=True)],
                               reason="reconcile: name_mismatch")
    assert done == [RecordKey("project", 7)]
    rec = await store.get(RecordKey("project", 7))
    assert rec is not None and rec.state is State.PENDING and rec.synced_fields == actual
    history = await store.history(RecordKey("project", 7))
    assert (history[0].from_state, history[0].to_state, history[0].reason) == (
        "synced", "pending", "reconcile: name_mismatch")


async def test_list_records_pages_newest_first(store: Store) -> None:
    for i in range(1, 6):
        await store.upsert([job_row(i)])
    page1 = await store.list_records(limit=2)
    assert [r.st_id for r in page1] == [5, 4]
    last = page1[-1]
    page2 = await store.list_records(limit=2, after=(last.updated_at, last.kind, last.st_id))
    assert [r.st_id for r in page2] == [3, 2]
    assert [r.st_id for r in await store.list_records(state="synced")] == []


async def test_activation_time_is_stored_once_and_renewed_on_reactivation(store: Store) -> None:
    first = await store.apply_auto_sync(True, T0)
    assert first.activated_at == T0
    again = await store.apply_auto_sync(True, T0 + timedelta(hours=1))  # a restart: unchanged
    assert again.activated_at == T0
    await store.set_cursor("jobs", "tok")
    await store.apply_auto_sync(False, T0 + timedelta(hours=2))
    back = await store.apply_auto_sync(True, T0 + timedelta(hours=3))
    assert back.activated_at == T0 + timedelta(hours=3)
    assert await store.get_cursor("jobs") is None  # the off period is not replayed


async def test_notify_on_enqueue(store: Store, database_dsn: str) -> None:
    conn = await asyncpg.connect(database_dsn)
    got: asyncio.Queue[str] = asyncio.Queue()
    try:
        await conn.add_listener(store.channel, lambda *args: got.put_nowait(args[3]))
        await store.upsert([job_row(1)])
        assert await asyncio.wait_for(got.get(), 5) == "enqueue"
        await store.upsert([job_row(1)])  # nothing new: no wake-up
        await asyncio.sleep(0.2)
        assert got.empty()
    finally:
        await conn.close()


async def test_upsert_refuses_nothing_on_duplicate_keys_within_a_page(store: Store) -> None:
    later = T0 + timedelta(seconds=5)
    result = await store.upsert([job_row(1, number="a"), replace(job_row(1, number="b", modified=later))])
    assert result.inserted == [RecordKey("job", 1)]
    rec = await store.get(RecordKey("job", 1))
    assert rec is not None and rec.st_number == "b"


async def test_every_committed_transition_reaches_listeners(store: Store) -> None:
    seen: list[tuple[str, str | None, str]] = []
    store.on_transitions(lambda ts: seen.extend((str(t.key), t.from_state, t.to_state) for t in ts))
    await store.upsert([job_row(1)])
    [rec] = await store.claim_batch("w1", 10, LEASE)
    await store.mark_synced("w1", [Synced(rec.key, rec.desired_hash, rec.desired, 1)],
        {rec.key: rec.claim_id})
    assert seen == [("job/1", None, "pending"), ("job/1", "pending", "syncing"), ("job/1", "syncing", "synced")]
    # The stored history says the same, newest first.
    history = await store.history(rec.key)
    assert [(h.from_state, h.to_state) for h in reversed(history)] == [(f, t) for _, f, t in seen]


async def test_claim_restricted_to_keys_keeps_parents_first(store: Store) -> None:
    await store.upsert([project_row(7), job_row(11, project=7), job_row(12, project=7), job_row(13)])
    only = [RecordKey("job", 11), RecordKey("project", 7)]
    batch = await store.claim_batch("ensure", 10, LEASE, only=only)
    assert [r.key for r in batch] == [RecordKey("project", 7), RecordKey("job", 11)]
    # A job whose parent is not ready and not claimed with it stays pending.
    assert await store.claim_batch("ensure", 10, LEASE, only=[RecordKey("job", 12)]) == []


async def test_old_history_is_pruned(store: Store, pool: asyncpg.Pool) -> None:
    await store.upsert([job_row(1), job_row(2)])
    async with pool.acquire() as conn:
        await conn.execute("UPDATE record_history SET at = now() - interval '100 days' WHERE st_id = 1")
    assert await store.prune_history(90) == 1
    assert await store.history(RecordKey("job", 1)) == []
    assert len(await store.history(RecordKey("job", 2))) == 1
    rec = await store.get(RecordKey("job", 1))
    assert rec is not None and rec.state is State.PENDING  # the record itself is untouched
