-- A record's PROJECTID is fixed once Intacct has it: `intacct_confirmed` says Intacct created it or
-- was found to hold it, after which template edits and renumbering leave `intacct_project_id` alone.
ALTER TABLE records ADD COLUMN intacct_confirmed boolean NOT NULL DEFAULT false;
-- Inactive records that were never created were stored with their desired fields as if Intacct held
-- them (and no RECORDNO): they are not in Intacct.
UPDATE records SET synced_fields = NULL
WHERE synced_fields IS NOT NULL AND intacct_record_no IS NULL AND synced_fields ->> 'STATUS' = 'inactive';
UPDATE records SET intacct_confirmed = true
WHERE synced_fields IS NOT NULL AND synced_fields ->> 'PROJECTID' = intacct_project_id;
