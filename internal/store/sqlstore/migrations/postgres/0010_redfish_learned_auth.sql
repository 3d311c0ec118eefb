-- A Redfish BMC's learned authentication (docs/redfish.md): for an account
-- whose redfish_auth is auto, what worked last — 'session' or 'basic' ('':
-- nothing learned yet, or to be learned again after a refusal) — kept with
-- the BMC's learned profile, so a restart does not learn it again. Like
-- the rest of the profile it belongs to the account's address.

ALTER TABLE bmc_profiles ADD COLUMN redfish_auth TEXT NOT NULL DEFAULT '';
