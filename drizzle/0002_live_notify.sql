-- Live updates for the admin page. Every status write, from any server process or code path
-- (the API, the scheduler, GitHub webhooks), is announced on one channel after commit, so each
-- server's LISTEN connection can push it to its browsers. Payloads carry ids only, never text.
CREATE OR REPLACE FUNCTION gaffer_notify_issue() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('gaffer_events', json_build_object('t', 'issue', 'id', NEW.id, 'status', NEW.status, 'owner', NEW.owner_id)::text);
  RETURN NULL;
END
$$;
--> statement-breakpoint
CREATE TRIGGER issues_notify_status AFTER UPDATE OF status ON issues
  FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION gaffer_notify_issue();
--> statement-breakpoint
CREATE OR REPLACE FUNCTION gaffer_notify_task() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE'
     AND NEW.status IS NOT DISTINCT FROM OLD.status
     AND NEW.node_id IS NOT DISTINCT FROM OLD.node_id
     AND NEW.pr_url IS NOT DISTINCT FROM OLD.pr_url
     AND NEW.result_branch IS NOT DISTINCT FROM OLD.result_branch THEN
    RETURN NULL;
  END IF;
  PERFORM pg_notify('gaffer_events', json_build_object(
    't', 'task', 'id', NEW.id, 'issue', NEW.issue_id, 'status', NEW.status, 'node', NEW.node_id,
    'owner', (SELECT owner_id FROM issues WHERE id = NEW.issue_id))::text);
  RETURN NULL;
END
$$;
--> statement-breakpoint
CREATE TRIGGER tasks_notify AFTER INSERT OR UPDATE ON tasks
  FOR EACH ROW EXECUTE FUNCTION gaffer_notify_task();
--> statement-breakpoint
-- Heartbeats are not announced one by one; only a node heard from after a long silence is,
-- since that is when it turns online. Pages re-read node liveness on a timer besides.
CREATE OR REPLACE FUNCTION gaffer_notify_node() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  row_id uuid;
BEGIN
  IF TG_OP = 'DELETE' THEN
    row_id := OLD.id;
  ELSE
    row_id := NEW.id;
    IF TG_OP = 'UPDATE'
       AND NEW.status IS NOT DISTINCT FROM OLD.status
       AND NEW.capacity IS NOT DISTINCT FROM OLD.capacity
       AND NEW.labels IS NOT DISTINCT FROM OLD.labels
       AND NEW.url IS NOT DISTINCT FROM OLD.url
       AND NOT (OLD.last_heartbeat_at IS NULL AND NEW.last_heartbeat_at IS NOT NULL)
       AND NOT (NEW.last_heartbeat_at - OLD.last_heartbeat_at > interval '60 seconds') THEN
      RETURN NULL;
    END IF;
  END IF;
  PERFORM pg_notify('gaffer_events', json_build_object('t', 'node', 'id', row_id)::text);
  RETURN NULL;
END
$$;
--> statement-breakpoint
CREATE TRIGGER nodes_notify AFTER INSERT OR UPDATE OR DELETE ON nodes
  FOR EACH ROW EXECUTE FUNCTION gaffer_notify_node();
--> statement-breakpoint
CREATE OR REPLACE FUNCTION gaffer_notify_log() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('gaffer_events', json_build_object('t', 'log', 'task', NEW.task_id, 'end', NEW."offset" + NEW.size)::text);
  RETURN NULL;
END
$$;
--> statement-breakpoint
CREATE TRIGGER task_log_chunks_notify AFTER INSERT ON task_log_chunks
  FOR EACH ROW EXECUTE FUNCTION gaffer_notify_log();
