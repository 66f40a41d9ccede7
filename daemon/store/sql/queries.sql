-- Every statement the daemon runs, by name. daemon/queries.py loads them once; daemon/store.py is
-- the only caller. Parameters are positional ($1 is always the tenant id).
-- Transitions are compare-and-set: each UPDATE names the states (and the lease) it expects, so a
-- stale worker, a second replica or a lease that already expired changes nothing.

-- name: lock_records
-- The existing rows among a page of ST records, locked so that the upsert decides on fresh states
-- (and keeps the PROJECTID of records Intacct already has).
SELECT kind, st_id, state, desired_hash, synced_hash, st_modified_on, intacct_project_id, intacct_confirmed
FROM records
WHERE tenant_id = $1
  AND (kind, st_id) IN (SELECT * FROM unnest($2::text[], $3::bigint[]))
ORDER BY kind, st_id
FOR UPDATE;

-- name: insert_records
INSERT INTO records (
    tenant_id, kind, st_id, state, st_number, st_name, st_customer_id, st_customer_name,
    st_project_id, st_active, st_created_on, st_modified_on, desired, desired_hash,
    intacct_project_id, parent_project_id, priority
)
SELECT $1, v.kind, v.st_id, 'pending', v.st_number, v.st_name, v.st_customer_id, v.st_customer_name,
       v.st_project_id, v.st_active, v.st_created_on, v.st_modified_on, v.desired::jsonb, v.desired_hash,
       v.intacct_project_id, v.parent_project_id, v.priority
FROM unnest($2::text[], $3::bigint[], $4::text[], $5::text[], $6::bigint[], $7::text[], $8::bigint[],
            $9::boolean[], $10::timestamptz[], $11::timestamptz[], $12::text[], $13::text[], $14::text[],
            $15::text[], $16::smallint[])
     AS v(kind, st_id, st_number, st_name, st_customer_id, st_customer_name, st_project_id, st_active,
          st_created_on, st_modified_on, desired, desired_hash, intacct_project_id, parent_project_id,
          priority)
ON CONFLICT (tenant_id, kind, st_id) DO NOTHING
RETURNING kind, st_id;

-- name: update_records
-- New ST facts for existing rows; $17 is the state each row moves to (decided by the state machine).
-- The desired fields already carry the fixed PROJECTID of records Intacct has (rows locked above).
UPDATE records r SET
    st_number = v.st_number,
    st_name = v.st_name,
    st_customer_id = v.st_customer_id,
    st_customer_name = v.st_customer_name,
    st_project_id = v.st_project_id,
    st_active = v.st_active,
    st_created_on = v.st_created_on,
    st_modified_on = v.st_modified_on,
    desired = v.desired::jsonb,
    desired_hash = v.desired_hash,
    intacct_project_id = v.intacct_project_id,
    parent_project_id = v.parent_project_id,
    priority = GREATEST(r.priority, v.priority),
    state = v.to_state,
    attempts = CASE WHEN v.to_state <> r.state THEN 0 ELSE r.attempts END,
    next_attempt_at = CASE WHEN v.to_state <> r.state THEN NULL ELSE r.next_attempt_at END,
    state_changed_at = CASE WHEN v.to_state <> r.state THEN now() ELSE r.state_changed_at END,
    updated_at = now()
FROM unnest($2::text[], $3::bigint[], $4::text[], $5::text[], $6::bigint[], $7::text[], $8::bigint[],
            $9::boolean[], $10::timestamptz[], $11::timestamptz[], $12::text[], $13::text[], $14::text[],
            $15::text[], $16::smallint[], $17::text[])
     AS v(kind, st_id, st_number, st_name, st_customer_id, st_customer_name, st_project_id, st_active,
          st_created_on, st_modified_on, desired, desired_hash, intacct_project_id, parent_project_id,
          priority, to_state)
WHERE r.tenant_id = $1 AND r.kind = v.kind AND r.st_id = v.st_id;

-- name: insert_history
INSERT INTO record_history (tenant_id, kind, st_id, from_state, to_state, reason, error)
SELECT $1, v.kind, v.st_id, v.from_state, v.to_state, v.reason, v.error::jsonb
FROM unnest($2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[])
     AS v(kind, st_id, from_state, to_state, reason, error);

-- name: notify
SELECT pg_notify($1, $2);

-- name: claim_projects
-- Ready pending projects, highest priority first. $2 limit, $3 owner, $4 lease seconds, $5 claim id,
-- $6 only these ST project ids (null: any), $7 whether projects go to Intacct at all (parent mapping).
WITH picked AS (
    SELECT kind, st_id FROM records
    WHERE tenant_id = $1 AND kind = 'project' AND state = 'pending' AND $7
      AND (next_attempt_at IS NULL OR next_attempt_at <= now())
      AND ($6::bigint[] IS NULL OR st_id = ANY($6::bigint[]))
    ORDER BY priority DESC, state_changed_at, st_modified_on
    LIMIT $2
    FOR UPDATE SKIP LOCKED
), claimed AS (
    UPDATE records r SET state = 'syncing', lease_owner = $3,
           lease_expires_at = now() + make_interval(secs => $4), claim_id = $5,
           attempts = r.attempts + 1, state_changed_at = now(), updated_at = now()
    FROM picked p
    WHERE r.tenant_id = $1 AND r.kind = p.kind AND r.st_id = p.st_id
    RETURNING r.*
), history AS (
    INSERT INTO record_history (tenant_id, kind, st_id, from_state, to_state, reason)
    SELECT tenant_id, kind, st_id, 'pending', 'syncing', 'claimed by ' || $3 FROM claimed
)
SELECT * FROM claimed ORDER BY priority DESC, st_id;

-- name: claim_jobs
-- Ready pending jobs, except those whose parent is on its way to Intacct (pending, syncing elsewhere,
-- blocked) and not there yet: a parent in Intacct, or travelling first in this very claim, lets the
-- job go; a parent that is failed or settled outside Intacct lets it go too, to fail at once with an
-- error naming the parent rather than wait silently. $6 only these ST job ids (null: any).
WITH picked AS (
    SELECT j.kind, j.st_id FROM records j
    WHERE j.tenant_id = $1 AND j.kind = 'job' AND j.state = 'pending'
      AND (j.next_attempt_at IS NULL OR j.next_attempt_at <= now())
      AND ($6::bigint[] IS NULL OR j.st_id = ANY($6::bigint[]))
      AND (j.parent_project_id IS NULL OR NOT EXISTS (
            SELECT 1 FROM records p
            WHERE p.tenant_id = j.tenant_id AND p.kind = 'project' AND p.st_id = j.st_project_id
              AND p.state IN ('pending', 'syncing', 'blocked-by-connection')
              AND (p.synced_fields ->> 'PROJECTID') IS DISTINCT FROM j.parent_project_id
              AND p.claim_id IS DISTINCT FROM $5))
    ORDER BY j.priority DESC, j.state_changed_at, j.st_modified_on
    LIMIT $2
    FOR UPDATE OF j SKIP LOCKED
), claimed AS (
    UPDATE records r SET state = 'syncing', lease_owner = $3,
           lease_expires_at = now() + make_interval(secs => $4), claim_id = $5,
           attempts = r.attempts + 1, state_changed_at = now(), updated_at = now()
    FROM picked p
    WHERE r.tenant_id = $1 AND r.kind = p.kind AND r.st_id = p.st_id
    RETURNING r.*
), history AS (
    INSERT INTO record_history (tenant_id, kind, st_id, from_state, to_state, reason)
    SELECT tenant_id, kind, st_id, 'pending', 'syncing', 'claimed by ' || $3 FROM claimed
)
SELECT * FROM claimed ORDER BY priority DESC, st_id;

-- name: count_ready
-- How many records are ready to claim, counted up to $2 (enough to size the next claim).
SELECT count(*) AS n FROM (
    SELECT 1 FROM records
    WHERE tenant_id = $1 AND state = 'pending' AND (next_attempt_at IS NULL OR next_attempt_at <= now())
    LIMIT $2
) ready;

-- name: renew_leases
-- $4/$5: only these claims (the ones a worker is still working on); null: every lease of the owner.
UPDATE records SET lease_expires_at = now() + make_interval(secs => $3)
WHERE tenant_id = $1 AND state = 'syncing' AND lease_owner = $2
  AND ($4::text[] IS NULL OR (kind, st_id) IN (SELECT * FROM unnest($4::text[], $5::bigint[])));

-- name: mark_synced
-- Success, compare-and-set on the very claim that produced it ($9: claim ids). A record whose desired
-- fields changed while it was in flight goes back to pending. $10: whether Intacct holds the record
-- (an inactive record never created settles without being recorded as existing; only Intacct's word
-- fixes a PROJECTID). Jobs that failed because of a project that is now in Intacct go back to pending
-- ($11: the error class that says so, $12: the reason in their history).
WITH v AS (
    SELECT * FROM unnest($3::text[], $4::bigint[], $5::text[], $6::text[], $7::bigint[], $8::text[],
                         $9::uuid[], $10::boolean[])
         AS v(kind, st_id, sent_hash, synced_fields, record_no, reason, claim_id, in_intacct)
), updated AS (
    UPDATE records r SET
        state = CASE WHEN r.desired_hash = v.sent_hash THEN 'synced' ELSE 'pending' END,
        synced_hash = v.sent_hash,
        synced_fields = CASE WHEN v.in_intacct THEN v.synced_fields::jsonb END,
        intacct_confirmed = r.intacct_confirmed OR v.in_intacct,
        intacct_record_no = COALESCE(v.record_no, r.intacct_record_no),
        attempts = CASE WHEN r.desired_hash = v.sent_hash THEN r.attempts ELSE 0 END,
        -- An explicit request (ensure, sync) is answered once the record is synced: its later
        -- changes queue with everything else again.
        priority = CASE WHEN r.desired_hash = v.sent_hash THEN 0 ELSE r.priority END,
        lease_owner = NULL, lease_expires_at = NULL, claim_id = NULL, next_attempt_at = NULL,
        verify_first = false, last_error = NULL, state_changed_at = now(), updated_at = now()
    FROM v
    WHERE r.tenant_id = $1 AND r.kind = v.kind AND r.st_id = v.st_id
      AND r.state = 'syncing' AND r.lease_owner = $2 AND r.claim_id = v.claim_id
    RETURNING r.kind, r.st_id, r.state, v.in_intacct,
              CASE WHEN r.state = 'synced' THEN v.reason ELSE 'changed in ServiceTitan while syncing' END AS reason
), revived AS (
    UPDATE records j SET state = 'pending', attempts = 0, next_attempt_at = NULL,
           state_changed_at = now(), updated_at = now()
    FROM updated u
    WHERE u.kind = 'project' AND u.in_intacct
      AND j.tenant_id = $1 AND j.kind = 'job' AND j.st_project_id = u.st_id
      AND j.state = 'failed' AND (j.last_error ->> 'class') = $11
    RETURNING j.kind, j.st_id
), history AS (
    INSERT INTO record_history (tenant_id, kind, st_id, from_state, to_state, reason)
    SELECT $1, kind, st_id, 'syncing', state, reason FROM updated
    UNION ALL
    SELECT $1, kind, st_id, 'failed', 'pending', $12 FROM revived
)
SELECT kind, st_id, 'syncing' AS from_state, state, reason FROM updated
UNION ALL
SELECT kind, st_id, 'failed', 'pending', $12 FROM revived;

-- name: finish_claims
-- Any other end of a claim: retry later, failed, blocked, released. $3.. per row: target state,
-- reason, error (json), delay before the next attempt (s), attempts to give back, read-before-create,
-- and the hash that was sent (a failure on fields that have changed since is moot: back to pending,
-- with fresh attempts, as a change in ServiceTitan gives a failed record), and the claim id ($12).
-- A job failing for its parent ($13: that error class) whose parent reached Intacct meanwhile is
-- moot too.
WITH v AS (
    SELECT * FROM unnest($3::text[], $4::bigint[], $5::text[], $6::text[], $7::text[], $8::float8[],
                         $9::integer[], $10::boolean[], $11::text[], $12::uuid[])
         AS v(kind, st_id, to_state, reason, error, delay_s, refund, verify_first, sent_hash, claim_id)
), moot AS (
    SELECT r.kind, r.st_id FROM records r JOIN v ON r.kind = v.kind AND r.st_id = v.st_id
    WHERE r.tenant_id = $1 AND v.to_state = 'failed'
      AND (r.desired_hash IS DISTINCT FROM v.sent_hash
           OR ((v.error::jsonb ->> 'class') = $13 AND EXISTS (
                SELECT 1 FROM records p
                WHERE p.tenant_id = r.tenant_id AND p.kind = 'project' AND p.st_id = r.st_project_id
                  AND (p.synced_fields ->> 'PROJECTID') = r.parent_project_id)))
), updated AS (
    UPDATE records r SET
        state = CASE WHEN m.st_id IS NOT NULL THEN 'pending' ELSE v.to_state END,
        last_error = COALESCE(v.error::jsonb, r.last_error),
        next_attempt_at = CASE WHEN v.delay_s IS NULL THEN NULL
                               ELSE now() + make_interval(secs => v.delay_s) END,
        attempts = CASE WHEN m.st_id IS NOT NULL THEN 0 ELSE GREATEST(r.attempts - v.refund, 0) END,
        verify_first = r.verify_first OR v.verify_first,
        lease_owner = NULL, lease_expires_at = NULL, claim_id = NULL,
        state_changed_at = now(), updated_at = now()
    FROM v LEFT JOIN moot m ON m.kind = v.kind AND m.st_id = v.st_id
    WHERE r.tenant_id = $1 AND r.kind = v.kind AND r.st_id = v.st_id
      AND r.state = 'syncing' AND r.lease_owner = $2 AND r.claim_id = v.claim_id
    RETURNING r.kind, r.st_id, r.state, v.reason, v.error
), history AS (
    INSERT INTO record_history (tenant_id, kind, st_id, from_state, to_state, reason, error)
    SELECT $1, kind, st_id, 'syncing', state, reason, error::jsonb FROM updated
)
SELECT kind, st_id, state, reason, error FROM updated;

-- name: release_owner
-- A stopping worker process gives back every claim it still holds. What was in flight may have
-- landed in Intacct, so it is read before any create.
WITH updated AS (
    UPDATE records SET state = 'pending', lease_owner = NULL, lease_expires_at = NULL, claim_id = NULL,
           verify_first = true, attempts = GREATEST(attempts - 1, 0), state_changed_at = now(), updated_at = now()
    WHERE tenant_id = $1 AND state = 'syncing' AND lease_owner = $2
    RETURNING kind, st_id
), history AS (
    INSERT INTO record_history (tenant_id, kind, st_id, from_state, to_state, reason)
    SELECT $1, kind, st_id, 'syncing', 'pending', 'released at shutdown' FROM updated
)
SELECT kind, st_id FROM updated;

-- name: expire_leases
-- Claims whose worker died: back to pending, and read before creating (the request may have landed).
WITH updated AS (
    UPDATE records SET state = 'pending', lease_owner = NULL, lease_expires_at = NULL, claim_id = NULL,
           verify_first = true, state_changed_at = now(), updated_at = now()
    WHERE tenant_id = $1 AND state = 'syncing' AND lease_expires_at < now()
    RETURNING kind, st_id
), history AS (
    INSERT INTO record_history (tenant_id, kind, st_id, from_state, to_state, reason)
    SELECT $1, kind, st_id, 'syncing', 'pending', 'lease expired' FROM updated
)
SELECT kind, st_id FROM updated;

-- name: revive_parent_failures
-- Jobs still failed for a parent that is in Intacct now: the parent synced while the job's failure
-- was being stored, so neither statement saw the other. $2: the error class, $3: the reason.
WITH updated AS (
    UPDATE records j SET state = 'pending', attempts = 0, next_attempt_at = NULL,
           state_changed_at = now(), updated_at = now()
    WHERE j.tenant_id = $1 AND j.kind = 'job' AND j.state = 'failed' AND (j.last_error ->> 'class') = $2
      AND EXISTS (SELECT 1 FROM records p
                  WHERE p.tenant_id = j.tenant_id AND p.kind = 'project' AND p.st_id = j.st_project_id
                    AND (p.synced_fields ->> 'PROJECTID') = j.parent_project_id)
    RETURNING j.kind, j.st_id
), history AS (
    INSERT INTO record_history (tenant_id, kind, st_id, from_state, to_state, reason)
    SELECT $1, kind, st_id, 'failed', 'pending', $3 FROM updated
)
SELECT kind, st_id FROM updated;

-- name: block_pending
-- The Intacct connection is in error: the queue holds (in-flight claims block themselves).
WITH updated AS (
    UPDATE records SET state = 'blocked-by-connection', last_error = $2::jsonb,
           state_changed_at = now(), updated_at = now()
    WHERE tenant_id = $1 AND state = 'pending'
    RETURNING kind, st_id
), history AS (
    INSERT INTO record_history (tenant_id, kind, st_id, from_state, to_state, reason, error)
    SELECT $1, kind, st_id, 'pending', 'blocked-by-connection', $3, $2::jsonb FROM updated
)
SELECT kind, st_id FROM updated;

-- name: unblock_all
WITH updated AS (
    UPDATE records SET state = 'pending', next_attempt_at = NULL, state_changed_at = now(), updated_at = now()
    WHERE tenant_id = $1 AND state = 'blocked-by-connection'
    RETURNING kind, st_id
), history AS (
    INSERT INTO record_history (tenant_id, kind, st_id, from_state, to_state, reason)
    SELECT $1, kind, st_id, 'blocked-by-connection', 'pending', $2 FROM updated
)
SELECT kind, st_id FROM updated;

-- name: retry_failed
-- Operator retry: failed → pending. $2/$3 restrict to keys unless $4 (all failed records) is true.
WITH updated AS (
    UPDATE records SET state = 'pending', attempts = 0, next_attempt_at = NULL, priority = GREATEST(priority, $5),
           state_changed_at = now(), updated_at = now()
    WHERE tenant_id = $1 AND state = 'failed'
      AND ($4 OR (kind, st_id) IN (SELECT * FROM unnest($2::text[], $3::bigint[])))
    RETURNING kind, st_id
), history AS (
    INSERT INTO record_history (tenant_id, kind, st_id, from_state, to_state, reason)
    SELECT $1, kind, st_id, 'failed', 'pending', $6 FROM updated
)
SELECT kind, st_id FROM updated;

-- name: requeue
-- Repair or an explicit request: synced/failed → pending even when ST did not change (Intacct
-- drifted). $4 per row: Intacct's fields as last read (null: absent there), $5: whether it was read.
WITH v AS (
    SELECT * FROM unnest($2::text[], $3::bigint[], $4::text[], $5::boolean[])
         AS v(kind, st_id, actual, was_read)
), updated AS (
    UPDATE records r SET
        state = 'pending', attempts = 0, next_attempt_at = NULL,
        priority = GREATEST(r.priority, $6),
        synced_fields = CASE WHEN v.was_read THEN v.actual::jsonb ELSE r.synced_fields END,
        synced_hash = CASE WHEN v.was_read THEN NULL ELSE r.synced_hash END,
        state_changed_at = now(), updated_at = now()
    FROM v
    WHERE r.tenant_id = $1 AND r.kind = v.kind AND r.st_id = v.st_id AND r.state = ANY($7::text[])
    RETURNING r.kind, r.st_id,
              (SELECT o.state FROM records o
               WHERE o.tenant_id = r.tenant_id AND o.kind = r.kind AND o.st_id = r.st_id) AS from_state
), history AS (
    INSERT INTO record_history (tenant_id, kind, st_id, from_state, to_state, reason)
    SELECT $1, kind, st_id, from_state, 'pending', $8 FROM updated
)
SELECT kind, st_id, from_state FROM updated;

-- name: raise_priority
UPDATE records SET priority = GREATEST(priority, $4), next_attempt_at = NULL, updated_at = now()
WHERE tenant_id = $1 AND state = 'pending'
  AND (kind, st_id) IN (SELECT * FROM unnest($2::text[], $3::bigint[]));

-- name: get_record
SELECT * FROM records WHERE tenant_id = $1 AND kind = $2 AND st_id = $3;

-- name: get_records
SELECT * FROM records
WHERE tenant_id = $1 AND (kind, st_id) IN (SELECT * FROM unnest($2::text[], $3::bigint[]));

-- name: get_projects_by_st_ids
SELECT * FROM records WHERE tenant_id = $1 AND kind = 'project' AND st_id = ANY($2::bigint[]);

-- name: records_after
-- Every record of the tenant in key order, a page at a time ($2, $3: the last key of the previous page).
SELECT * FROM records WHERE tenant_id = $1 AND (kind, st_id) > ($2, $3) ORDER BY kind, st_id LIMIT $4;

-- name: jobs_of_projects
SELECT * FROM records WHERE tenant_id = $1 AND kind = 'job' AND st_project_id = ANY($2::bigint[]);

-- name: record_history
SELECT at, from_state, to_state, reason, error FROM record_history
WHERE tenant_id = $1 AND kind = $2 AND st_id = $3
ORDER BY id DESC LIMIT $4;

-- name: list_records
-- Newest change first; the cursor is (updated_at, kind, st_id) of the last row of the previous page.
SELECT * FROM records
WHERE tenant_id = $1
  AND ($2::text IS NULL OR state = $2)
  AND ($3::text IS NULL OR kind = $3)
  AND ($4::timestamptz IS NULL OR (updated_at, kind, st_id) < ($4, $5::text, $6::bigint))
ORDER BY updated_at DESC, kind DESC, st_id DESC
LIMIT $7;

-- name: state_counts
-- One index-only count per state on records_state_count_idx: a GROUP BY over the tenant would read
-- the whole table (the planner prefers a sequential scan for all rows), and /metrics asks often.
SELECT s.state, (SELECT count(*) FROM records r WHERE r.tenant_id = $1 AND r.state = s.state) AS n
FROM unnest(ARRAY['pending', 'syncing', 'synced', 'blocked-by-connection', 'failed']) AS s(state);

-- name: oldest_pending
SELECT min(state_changed_at) AS oldest FROM records WHERE tenant_id = $1 AND state = 'pending';

-- name: next_due
-- When the earliest backed-off record becomes ready (workers sleep until then at most).
SELECT min(next_attempt_at) AS due FROM records
WHERE tenant_id = $1 AND state = 'pending' AND next_attempt_at IS NOT NULL;

-- name: recent_failures
SELECT kind, st_id, last_error, state_changed_at FROM records
WHERE tenant_id = $1 AND state = 'failed'
ORDER BY state_changed_at DESC LIMIT $2;

-- name: get_cursor
SELECT continue_from FROM feed_cursors WHERE tenant_id = $1 AND feed = $2;

-- name: set_cursor
INSERT INTO feed_cursors (tenant_id, feed, continue_from, updated_at) VALUES ($1, $2, $3, now())
ON CONFLICT (tenant_id, feed) DO UPDATE SET continue_from = EXCLUDED.continue_from, updated_at = now();

-- name: last_poll
-- When both feeds were last read (by whichever replica leads).
SELECT CASE WHEN count(*) = 2 THEN min(updated_at) END AS at FROM feed_cursors WHERE tenant_id = $1;

-- name: clear_cursors
DELETE FROM feed_cursors WHERE tenant_id = $1;

-- name: get_tenant_settings
SELECT auto_sync_on, auto_sync_activated_at FROM tenant_settings WHERE tenant_id = $1 FOR UPDATE;

-- name: insert_tenant_settings
INSERT INTO tenant_settings (tenant_id, auto_sync_on, auto_sync_activated_at) VALUES ($1, $2, $3)
ON CONFLICT (tenant_id) DO NOTHING;

-- name: get_derived_with
SELECT derived_with FROM tenant_settings WHERE tenant_id = $1;

-- name: set_derived_with
UPDATE tenant_settings SET derived_with = $2, updated_at = now() WHERE tenant_id = $1;

-- name: update_tenant_settings
UPDATE tenant_settings SET auto_sync_on = $2, auto_sync_activated_at = $3, updated_at = now()
WHERE tenant_id = $1;

-- name: prune_history
DELETE FROM record_history WHERE tenant_id = $1 AND at < now() - make_interval(days => $2);

-- name: create_reconcile_run
-- Only ever inserted by the holder of the tenant's reconcile advisory lock.
INSERT INTO reconcile_runs (tenant_id, status, trigger, scope, repair, period_start)
VALUES ($1, 'running', $2, $3, $4, $5)
RETURNING id, started_at;

-- name: fail_stale_reconcile_runs
-- Runs left `running` by a process that died. Called by the holder of the advisory lock, so no
-- other run of the tenant can be in progress.
UPDATE reconcile_runs SET status = 'failed', finished_at = now(), error = $2
WHERE tenant_id = $1 AND status = 'running';

-- name: running_reconcile_run
SELECT id FROM reconcile_runs WHERE tenant_id = $1 AND status = 'running' ORDER BY id DESC LIMIT 1;

-- name: finish_reconcile_run
UPDATE reconcile_runs SET status = $3, finished_at = now(), counts = $4::jsonb, exceptions = $5,
       timings = $6::jsonb, error = $7, summary = $8::jsonb
WHERE tenant_id = $1 AND id = $2
RETURNING finished_at;

-- name: insert_reconcile_exceptions
INSERT INTO reconcile_exceptions (run_id, seq, class, kind, st_id, st_number, st_name,
                                  intacct_project_id, intacct_name, detail, action, since, needs_attention)
SELECT $1, v.seq, v.class, v.kind, v.st_id, v.st_number, v.st_name, v.intacct_project_id, v.intacct_name,
       v.detail, v.action, v.since, v.needs_attention
FROM unnest($2::integer[], $3::text[], $4::text[], $5::bigint[], $6::text[], $7::text[], $8::text[],
            $9::text[], $10::text[], $11::text[], $12::timestamptz[], $13::boolean[])
     AS v(seq, class, kind, st_id, st_number, st_name, intacct_project_id, intacct_name, detail, action, since,
          needs_attention);

-- name: set_reconcile_report
UPDATE reconcile_runs SET report_sent_at = $3, report_error = $4 WHERE tenant_id = $1 AND id = $2;

-- name: latest_reconcile_run
SELECT * FROM reconcile_runs WHERE tenant_id = $1 AND status <> 'running' ORDER BY id DESC LIMIT 1;

-- name: newest_reconcile_run
-- The last run started, whatever its status (the scheduler counts the interval from it).
SELECT * FROM reconcile_runs WHERE tenant_id = $1 ORDER BY id DESC LIMIT 1;

-- name: get_reconcile_run
SELECT * FROM reconcile_runs WHERE tenant_id = $1 AND id = $2;

-- name: reconcile_exceptions
SELECT * FROM reconcile_exceptions WHERE run_id = $1 ORDER BY seq LIMIT $2;

-- name: reconcile_exceptions_since
-- When each exception of a run was first reported, to carry the age over to the next run.
SELECT class, kind, st_id, intacct_project_id, since FROM reconcile_exceptions WHERE run_id = $1;

-- name: prune_reconcile_runs
-- Keep the newest $2 runs of the tenant (their exceptions go with them).
DELETE FROM reconcile_runs
WHERE tenant_id = $1 AND id < (SELECT min(id) FROM (SELECT id FROM reconcile_runs WHERE tenant_id = $1
                                                    ORDER BY id DESC LIMIT $2) newest);

-- name: reconcile_tracked
-- What a reconciliation needs of the tracked records among a page of ST ids of one kind. A join with
-- the ids (not `st_id = ANY(...)`): a filter would compare each row with the whole page of ids
-- whenever the planner picks a scan, thousands of times per row.
SELECT r.st_id, r.state, r.st_customer_id, r.st_customer_name, r.st_active, r.desired_hash,
       r.intacct_project_id, r.intacct_confirmed, r.last_error, r.state_changed_at
FROM unnest($3::bigint[]) AS v(st_id)
JOIN records r ON r.tenant_id = $1 AND r.kind = $2 AND r.st_id = v.st_id;

-- name: tracked_intacct_ids
-- Which of these Intacct PROJECTIDs a tracked record owns (not orphans: ST listed them after us).
SELECT DISTINCT r.intacct_project_id
FROM unnest($2::text[]) AS v(project_id)
JOIN records r ON r.tenant_id = $1 AND r.intacct_project_id = v.project_id;

-- name: try_advisory_lock
-- Session advisory locks, held on a dedicated connection (the leader's; reconcile runs, one per tenant).
SELECT pg_try_advisory_lock($1);

-- name: advisory_lock
SELECT pg_advisory_lock($1);

-- name: advisory_unlock
SELECT pg_advisory_unlock($1);

-- name: advisory_xact_lock
-- Held until the transaction ends (migrations, one replica at a time).
SELECT pg_advisory_xact_lock($1);

-- name: queue_page
-- The queue page, newest change first (one kind or both), after the previous page's last row
-- ($3..$5: its updated_at, kind, st_id; null on the first page). Walks records_updated_idx in order:
-- the COALESCE keeps `updated_at <=` an index condition whatever the plan.
SELECT * FROM records
WHERE tenant_id = $1
  AND ($2::text IS NULL OR kind = $2)
  AND updated_at <= COALESCE($3::timestamptz, 'infinity')
  AND (updated_at < COALESCE($3::timestamptz, 'infinity') OR (kind, st_id) > ($4::text, $5::bigint))
ORDER BY updated_at DESC, kind, st_id
LIMIT $6;

-- name: queue_in_state
-- The same for one state ($6), on records_state_idx.
SELECT * FROM records
WHERE tenant_id = $1 AND state = $6
  AND ($2::text IS NULL OR kind = $2)
  AND updated_at <= COALESCE($3::timestamptz, 'infinity')
  AND (updated_at < COALESCE($3::timestamptz, 'infinity') OR (kind, st_id) > ($4::text, $5::bigint))
ORDER BY updated_at DESC, kind, st_id
LIMIT $7;

-- name: queue_search
-- Records whose ServiceTitan number, name or customer name has words starting with every word of
-- $6 (ServiceTitan number 2401 finds 24011), on the records_search_idx GIN index; $7 one state.
-- The query's words are split by the same parser as the names, so what is shown is what matches.
SELECT * FROM records
WHERE tenant_id = $1
  AND to_tsvector('simple', coalesce(st_number, '') || ' ' || coalesce(st_name, '') || ' '
                            || coalesce(st_customer_name, ''))
      @@ (SELECT to_tsquery('simple', string_agg(
                 '''' || replace(replace(lexeme, '\', '\\'), '''', '''''') || ''':*', ' & '))
          FROM unnest(to_tsvector('simple', $6::text)))
  AND ($7::text IS NULL OR state = $7)
  AND ($2::text IS NULL OR kind = $2)
  AND updated_at <= COALESCE($3::timestamptz, 'infinity')
  AND (updated_at < COALESCE($3::timestamptz, 'infinity') OR (kind, st_id) > ($4::text, $5::bigint))
ORDER BY updated_at DESC, kind, st_id
LIMIT $8;

-- name: outcomes_per_hour
-- Records that reached synced or failed, per UTC hour since $2 (the overview's chart), on the
-- partial index record_history_outcome_idx alone.
SELECT date_trunc('hour', at, 'UTC') AS hour, to_state, count(*) AS n
FROM record_history
WHERE tenant_id = $1 AND to_state IN ('synced', 'failed') AND at >= $2
GROUP BY 1, 2;

-- name: reconcile_runs
-- The runs page: newest first, before run $2 (null: from the newest).
SELECT * FROM reconcile_runs
WHERE tenant_id = $1 AND id < COALESCE($2::bigint, 9223372036854775807)
ORDER BY id DESC
LIMIT $3;

-- name: run_exceptions_page
-- A run's exceptions in stored order after seq $2, on the primary key (the run page's pages).
SELECT * FROM reconcile_exceptions WHERE run_id = $1 AND seq > $2 ORDER BY seq LIMIT $3;

-- name: create_schema_migrations
-- One row per applied migration, with the SHA-256 of its file as applied (0.1 recorded none).
CREATE TABLE IF NOT EXISTS schema_migrations (
    version integer PRIMARY KEY,
    name text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    checksum text
);

-- name: add_migration_checksum
-- A database migrated by 0.1 has the table without the column.
ALTER TABLE schema_migrations ADD COLUMN IF NOT EXISTS checksum text;

-- name: applied_migrations
SELECT version, name, checksum FROM schema_migrations ORDER BY version;

-- name: record_migration
INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3);

-- name: record_migration_checksum
-- Checksums of migrations 0.1 applied, taken once from the files of the version that first sees them.
UPDATE schema_migrations SET checksum = $2 WHERE version = $1 AND checksum IS NULL;

-- name: has_schema_migrations
SELECT to_regclass('schema_migrations') IS NOT NULL;

-- name: schema_version
SELECT coalesce(max(version), 0) FROM schema_migrations;

-- name: get_report_state
SELECT fingerprint, exceptions, run_id, sent_at, digest_on FROM report_state WHERE tenant_id = $1;

-- name: save_report_state
-- After a report was sent: what it listed; the digest day only moves when this one was the digest.
INSERT INTO report_state (tenant_id, fingerprint, exceptions, run_id, sent_at, digest_on)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (tenant_id) DO UPDATE
SET fingerprint = EXCLUDED.fingerprint, exceptions = EXCLUDED.exceptions, run_id = EXCLUDED.run_id,
    sent_at = EXCLUDED.sent_at, digest_on = coalesce(EXCLUDED.digest_on, report_state.digest_on);
