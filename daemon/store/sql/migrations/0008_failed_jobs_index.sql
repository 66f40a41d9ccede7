-- Jobs that failed, by their project: when a project reaches Intacct, mark_synced sends the jobs that
-- failed because of it back to pending. Without this index that lookup walked every job of the tenant
-- on each batch of results (half the store's claim→synced rate at 20,000 jobs); failed jobs are few.
CREATE INDEX records_failed_jobs_idx ON records (tenant_id, st_project_id) WHERE kind = 'job' AND state = 'failed';
