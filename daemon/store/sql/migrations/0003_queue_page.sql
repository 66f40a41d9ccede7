-- The queue page: word-prefix search over a record's ServiceTitan number, name and customer name,
-- and the overview's chart of records synced and failed per hour, each on an index of its own.
CREATE INDEX records_search_idx ON records USING gin (
    to_tsvector('simple', coalesce(st_number, '') || ' ' || coalesce(st_name, '') || ' '
                          || coalesce(st_customer_name, '')));
CREATE INDEX record_history_outcome_idx ON record_history (tenant_id, at) INCLUDE (to_state)
    WHERE to_state IN ('synced', 'failed');
