-- A task's phase (where its node is with it) lives only while it runs on that node: any other
-- status, or another node, clears it here, so no path that moves a task has to remember to.
CREATE OR REPLACE FUNCTION gaffer_task_phase_clear() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.phase IS NOT NULL AND (NEW.status <> 'running' OR NEW.node_id IS DISTINCT FROM OLD.node_id) THEN
    NEW.phase := NULL;
  END IF;
  RETURN NEW;
END;
$$;
--> statement-breakpoint
CREATE TRIGGER tasks_phase_clear BEFORE UPDATE ON tasks FOR EACH ROW EXECUTE FUNCTION gaffer_task_phase_clear();
--> statement-breakpoint
-- A candidate's check run shows its whole run's table, so a change of one candidate refreshes the
-- check runs of the run's other candidates still running as well (each coalesced like its own:
-- 0027's gaffer_record_feedback, priority 2, unchanged). A finished candidate's run keeps the table
-- as it was when it finished.
CREATE OR REPLACE FUNCTION gaffer_task_feedback() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  sibling uuid;
BEGIN
  PERFORM gaffer_record_feedback(NEW.issue_id, NEW.id, NEW.started_at IS NOT NULL OR NEW.check_run_id IS NOT NULL);
  IF NEW.run_id IS NOT NULL THEN
    FOR sibling IN
      SELECT id FROM tasks WHERE run_id = NEW.run_id AND id <> NEW.id AND status = 'running' AND check_run_id IS NOT NULL
    LOOP
      PERFORM gaffer_record_feedback(NEW.issue_id, sibling, true);
    END LOOP;
  END IF;
  RETURN NULL;
END;
$$;
--> statement-breakpoint
-- 0027's list of what the comment and the run show, and the phase.
DROP TRIGGER tasks_feedback_update ON tasks;
--> statement-breakpoint
CREATE TRIGGER tasks_feedback_update AFTER UPDATE ON tasks FOR EACH ROW
  WHEN (OLD.status IS DISTINCT FROM NEW.status
     OR OLD.node_id IS DISTINCT FROM NEW.node_id
     OR OLD.pr_number IS DISTINCT FROM NEW.pr_number
     OR OLD.started_at IS DISTINCT FROM NEW.started_at
     OR OLD.error_message IS DISTINCT FROM NEW.error_message
     OR OLD.failure_kind IS DISTINCT FROM NEW.failure_kind
     OR OLD.outcome IS DISTINCT FROM NEW.outcome
     OR OLD.phase IS DISTINCT FROM NEW.phase)
  EXECUTE FUNCTION gaffer_task_feedback();
