-- Redfish accounts: how to log in. '' (auto): a session when the BMC's
-- service root links a SessionService, else HTTP Basic; 'session' or
-- 'basic' forces one (inventory field redfish_auth).

ALTER TABLE accounts ADD COLUMN redfish_auth TEXT NOT NULL DEFAULT '';
