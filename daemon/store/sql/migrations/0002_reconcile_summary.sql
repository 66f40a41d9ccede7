-- Reconciliation runs keep a summary beside their counts (actions taken, exceptions that still need a
-- person, pages read, the outside-scope range for the backfill hint), and each exception says whether
-- it needs a person (nothing was queued to repair it).
ALTER TABLE reconcile_runs ADD COLUMN summary jsonb NOT NULL DEFAULT '{}'::jsonb;
ALTER TABLE reconcile_exceptions ADD COLUMN needs_attention boolean NOT NULL DEFAULT false;
