-- The settings and templates the stored desired fields were derived with (see statemachine's
-- derivation_key): a daemon starting or reloading with others derives every record again.
ALTER TABLE tenant_settings ADD COLUMN derived_with text;
