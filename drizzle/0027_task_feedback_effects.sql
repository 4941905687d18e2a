-- The status comment and the check run follow every change of a task's (or an issue's) visible
-- state, recorded as outbox effects by the database itself, in the transaction of the change:
-- every path that moves a task (the scheduler's SQL assignment included) is covered, and a crash
-- after the commit loses no update. One effect per transaction (the key ends in its id); while one
-- waits unperformed for the same target, nothing more is recorded (the pending-coalesce index
-- refuses it): the performer renders the target's latest state when it runs, so a burst of
-- changes is one write. Priority 2 is EFFECT_PRIORITY.status_comment and .check_run
-- (src/domain/effects.ts). `run_after` is the epoch, due at once: the application's clock, not the
-- database's, decides what is due.
CREATE OR REPLACE FUNCTION gaffer_record_feedback(p_issue_id uuid, p_task_id uuid, p_check boolean) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  inst bigint;
BEGIN
  SELECT r.installation_id INTO inst
    FROM issues i JOIN repositories r ON r.id = i.repository_id
   WHERE i.id = p_issue_id AND i.github_id IS NOT NULL;
  IF inst IS NULL THEN
    RETURN;
  END IF;
  INSERT INTO effects (kind, installation_id, task_id, issue_id, idempotency_key, coalesce_key, priority, run_after)
  VALUES ('status_comment', inst, p_task_id, p_issue_id, 'status:' || p_issue_id || ':' || txid_current(), 'status:' || p_issue_id, 2, 'epoch')
  ON CONFLICT DO NOTHING;
  IF p_check THEN
    INSERT INTO effects (kind, installation_id, task_id, issue_id, idempotency_key, coalesce_key, priority, run_after)
    VALUES ('check_run', inst, p_task_id, p_issue_id, 'check:' || p_task_id || ':' || txid_current(), 'check:' || p_task_id, 2, 'epoch')
    ON CONFLICT DO NOTHING;
  END IF;
END;
$$;
--> statement-breakpoint
-- A check run exists once a node has taken the task (started_at), so a queued task records none.
CREATE OR REPLACE FUNCTION gaffer_task_feedback() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM gaffer_record_feedback(NEW.issue_id, NEW.id, NEW.started_at IS NOT NULL OR NEW.check_run_id IS NOT NULL);
  RETURN NULL;
END;
$$;
--> statement-breakpoint
CREATE OR REPLACE FUNCTION gaffer_issue_feedback() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM gaffer_record_feedback(NEW.id, NULL, false);
  RETURN NULL;
END;
$$;
--> statement-breakpoint
CREATE TRIGGER tasks_feedback_insert AFTER INSERT ON tasks FOR EACH ROW EXECUTE FUNCTION gaffer_task_feedback();
--> statement-breakpoint
-- What the comment and the run show; not check_run_id or the comment's id, which the performers
-- themselves write (that would record another effect for each write).
CREATE TRIGGER tasks_feedback_update AFTER UPDATE ON tasks FOR EACH ROW
  WHEN (OLD.status IS DISTINCT FROM NEW.status
     OR OLD.node_id IS DISTINCT FROM NEW.node_id
     OR OLD.pr_number IS DISTINCT FROM NEW.pr_number
     OR OLD.started_at IS DISTINCT FROM NEW.started_at
     OR OLD.error_message IS DISTINCT FROM NEW.error_message
     OR OLD.failure_kind IS DISTINCT FROM NEW.failure_kind
     OR OLD.outcome IS DISTINCT FROM NEW.outcome)
  EXECUTE FUNCTION gaffer_task_feedback();
--> statement-breakpoint
CREATE TRIGGER issues_feedback_update AFTER UPDATE ON issues FOR EACH ROW
  WHEN (OLD.status IS DISTINCT FROM NEW.status)
  EXECUTE FUNCTION gaffer_issue_feedback();
