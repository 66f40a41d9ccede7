-- What the last emailed reconciliation report said, per tenant, so that `report.send: on-change` and
-- the daily digest (`report.daily_at`) still know it after a restart.
CREATE TABLE report_state (
    tenant_id    bigint      PRIMARY KEY,
    fingerprint  text        NOT NULL,   -- SHA-256 of the open exceptions' identities, sorted
    exceptions   integer     NOT NULL,
    run_id       bigint,
    sent_at      timestamptz NOT NULL,
    digest_on    date                    -- the local day (report.timezone) of the last daily digest
);
