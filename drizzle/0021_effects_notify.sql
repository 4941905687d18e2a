-- Wakes the effect worker on every replica when an effect becomes due now: NOTIFY is delivered
-- after the recording transaction commits, so a worker never looks before the row is visible.
CREATE OR REPLACE FUNCTION gaffer_effects_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('gaffer_effects', NEW.installation_id::text);
  RETURN NULL;
END;
$$;
--> statement-breakpoint
CREATE TRIGGER effects_notify AFTER INSERT ON effects FOR EACH ROW EXECUTE FUNCTION gaffer_effects_notify();
