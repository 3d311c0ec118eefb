-- Scale-out (docs/scale-out.md): every running server registers here with
-- its name, the zones it serves, its address for its peers and a lease it
-- renews; one whose lease lapsed is dead. view is the list of members the
-- instance last computed its share of the fleet over (the channels it may
-- still be touching: a new owner waits until the old owner's view moved
-- on or its lease lapsed). A machine belongs to a zone ('' is the default
-- zone). Times are Unix nanoseconds.
--
-- Every insert, update and delete of an account, and every update of a
-- machine, is announced on the channel lightsout_fleet (LISTEN/NOTIFY) as
-- 'a:ACCOUNT:MACHINE' or 'm:MACHINE', so the owner of a channel picks up
-- an import, edit or delete made through any instance at once.

CREATE TABLE instances (
  name         TEXT    PRIMARY KEY,
  zones        TEXT    NOT NULL DEFAULT '',
  peer_address TEXT    NOT NULL DEFAULT '',
  source       TEXT    NOT NULL DEFAULT '',
  version      TEXT    NOT NULL DEFAULT '',
  view         TEXT    NOT NULL DEFAULT '',
  channels     BIGINT  NOT NULL DEFAULT 0,
  checks       BIGINT  NOT NULL DEFAULT 0,
  started_at   BIGINT  NOT NULL,
  heartbeat_at BIGINT  NOT NULL,
  lease_until  BIGINT  NOT NULL
);

ALTER TABLE machines ADD COLUMN zone TEXT NOT NULL DEFAULT '';
CREATE INDEX machines_zone_idx ON machines (zone);

CREATE FUNCTION lightsout_notify_account() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF TG_OP = 'DELETE' THEN PERFORM pg_notify('lightsout_fleet', 'a:' || OLD.id || ':' || OLD.machine_id); ELSE PERFORM pg_notify('lightsout_fleet', 'a:' || NEW.id || ':' || NEW.machine_id); END IF; RETURN NULL; END $$;
CREATE TRIGGER accounts_notify AFTER INSERT OR UPDATE OR DELETE ON accounts FOR EACH ROW EXECUTE FUNCTION lightsout_notify_account();

CREATE FUNCTION lightsout_notify_machine() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_notify('lightsout_fleet', 'm:' || NEW.id); RETURN NULL; END $$;
CREATE TRIGGER machines_notify AFTER UPDATE ON machines FOR EACH ROW EXECUTE FUNCTION lightsout_notify_machine();
