-- The whole current schema: what applying every migration in order produces.
-- tests/integration/test_migrations.py proves the two agree; edit both together.

CREATE TABLE records (
    tenant_id          bigint      NOT NULL,
    kind               text        NOT NULL CHECK (kind IN ('job', 'project')),
    st_id              bigint      NOT NULL,
    state              text        NOT NULL
        CHECK (state IN ('pending', 'syncing', 'synced', 'blocked-by-connection', 'failed')),
    -- What ServiceTitan said last (the newest modifiedOn wins).
    st_number          text,
    st_name            text,
    st_customer_id     bigint,
    st_customer_name   text,
    st_project_id      bigint,                 -- a job's ST project, i.e. its Intacct parent
    st_active          boolean     NOT NULL DEFAULT true,
    st_created_on      timestamptz,
    st_modified_on     timestamptz,
    -- What Intacct should hold, and what it was last seen or made to hold.
    desired            jsonb       NOT NULL,
    desired_hash       text        NOT NULL,
    intacct_project_id text        NOT NULL,
    intacct_confirmed  boolean     NOT NULL DEFAULT false,  -- Intacct has intacct_project_id: it is fixed
    parent_project_id  text,                   -- desired PARENTID: a job waits until it exists
    synced_hash        text,
    synced_fields      jsonb,
    intacct_record_no  bigint,
    -- Work bookkeeping.
    attempts           integer     NOT NULL DEFAULT 0,
    next_attempt_at    timestamptz,
    priority           smallint    NOT NULL DEFAULT 0,
    verify_first       boolean     NOT NULL DEFAULT false,  -- last outcome unknown: read before create
    last_error         jsonb,
    lease_owner        text,
    lease_expires_at   timestamptz,
    claim_id           uuid,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    state_changed_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, kind, st_id)
);

-- The claim queries walk this index only: pending rows in priority order.
CREATE INDEX records_pending_idx ON records (tenant_id, kind, priority DESC, state_changed_at, st_modified_on)
    WHERE state = 'pending';
CREATE INDEX records_syncing_idx ON records (tenant_id, lease_expires_at) WHERE state = 'syncing';
CREATE INDEX records_state_idx ON records (tenant_id, state, updated_at DESC, kind, st_id);
-- Counts per state, index-only on a small deduplicated index (0005).
CREATE INDEX records_state_count_idx ON records (tenant_id, state);
CREATE INDEX records_updated_idx ON records (tenant_id, updated_at DESC, kind, st_id);
CREATE INDEX records_project_jobs_idx ON records (tenant_id, st_project_id) WHERE kind = 'job';
-- Failed jobs by project, for reviving them when their project reaches Intacct (0008).
CREATE INDEX records_failed_jobs_idx ON records (tenant_id, st_project_id) WHERE kind = 'job' AND state = 'failed';
CREATE INDEX records_intacct_id_idx ON records (tenant_id, intacct_project_id);
-- The queue page's search: word prefixes of the ServiceTitan number, name and customer name (0003).
CREATE INDEX records_search_idx ON records USING gin (
    to_tsvector('simple', coalesce(st_number, '') || ' ' || coalesce(st_name, '') || ' '
                          || coalesce(st_customer_name, '')));

CREATE TABLE record_history (
    id          bigserial   PRIMARY KEY,
    tenant_id   bigint      NOT NULL,
    kind        text        NOT NULL,
    st_id       bigint      NOT NULL,
    -- clock_timestamp, not now(): a claim's transaction may start before the insert it then sees
    -- commits, and the history must read in the order things happened.
    at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    from_state  text,
    to_state    text        NOT NULL,
    reason      text        NOT NULL,
    error       jsonb
);
CREATE INDEX record_history_record_idx ON record_history (tenant_id, kind, st_id, id);
CREATE INDEX record_history_at_idx ON record_history (at);
-- The overview's chart: synced and failed per hour, read from the index alone (0003).
CREATE INDEX record_history_outcome_idx ON record_history (tenant_id, at) INCLUDE (to_state)
    WHERE to_state IN ('synced', 'failed');

CREATE TABLE feed_cursors (
    tenant_id     bigint      NOT NULL,
    feed          text        NOT NULL CHECK (feed IN ('jobs', 'projects')),
    continue_from text        NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, feed)
);

CREATE TABLE tenant_settings (
    tenant_id               bigint      PRIMARY KEY,
    auto_sync_on            boolean     NOT NULL,
    auto_sync_activated_at  timestamptz,
    derived_with            text,       -- settings and templates the desired fields follow
    updated_at              timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE reconcile_runs (
    id            bigserial   PRIMARY KEY,
    tenant_id     bigint      NOT NULL,
    status        text        NOT NULL CHECK (status IN ('running', 'done', 'failed')),
    trigger       text        NOT NULL,
    scope         text        NOT NULL,
    repair        boolean     NOT NULL,
    period_start  timestamptz,
    started_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz,
    counts        jsonb       NOT NULL DEFAULT '{}'::jsonb,
    exceptions    integer     NOT NULL DEFAULT 0,
    timings       jsonb       NOT NULL DEFAULT '{}'::jsonb,
    error         text,
    report_sent_at timestamptz,
    report_error  text,
    summary       jsonb       NOT NULL DEFAULT '{}'::jsonb   -- actions, attention, pages (0002)
);
CREATE INDEX reconcile_runs_tenant_idx ON reconcile_runs (tenant_id, id DESC);

CREATE TABLE reconcile_exceptions (
    run_id              bigint NOT NULL REFERENCES reconcile_runs (id) ON DELETE CASCADE,
    seq                 integer NOT NULL,
    class               text   NOT NULL,
    kind                text,
    st_id               bigint,
    st_number           text,
    st_name             text,
    intacct_project_id  text,
    intacct_name        text,
    detail              text   NOT NULL DEFAULT '',
    action              text   NOT NULL DEFAULT '',
    since               timestamptz,
    needs_attention     boolean NOT NULL DEFAULT false,      -- nothing was queued to repair it (0002)
    PRIMARY KEY (run_id, seq)
);

CREATE TABLE report_state (
    tenant_id    bigint      PRIMARY KEY,
    fingerprint  text        NOT NULL,   -- open exceptions' identities, hashed (0006)
    exceptions   integer     NOT NULL,
    run_id       bigint,
    sent_at      timestamptz NOT NULL,
    digest_on    date                    -- local day of the last daily digest (0006)
);
