-- nodes.running: how many of a node's tasks hold it (status pending or running, as
-- ACTIVE_TASK_STATUSES and tasks_node_active_idx say), kept exact in the transaction that changes
-- a task, so that the scheduler reads it from nodes_pick_idx instead of counting every node's tasks.
-- The node row is locked before its tasks are counted: a concurrent change to another of its tasks
-- commits first or waits, and the count (a fresh snapshot, read committed) then sees it. The lock
-- is FOR NO KEY UPDATE, the one the UPDATE takes anyway: it does not conflict with the KEY SHARE
-- lock that the tasks.node_id foreign key check already took, where FOR UPDATE would deadlock two
-- transactions putting tasks on one node. A recount
-- rather than +1/-1, so a count that ever went wrong heals at the node's next change.
CREATE OR REPLACE FUNCTION gaffer_recount_node_running(node uuid) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  n integer;
BEGIN
  PERFORM 1 FROM nodes WHERE id = node FOR NO KEY UPDATE;
  IF NOT FOUND THEN
    RETURN; -- the node is being deleted (its tasks' node_id set null by the foreign key)
  END IF;
  SELECT count(*)::int INTO n FROM tasks WHERE node_id = node AND status IN ('pending', 'running');
  UPDATE nodes SET running = n WHERE id = node AND running IS DISTINCT FROM n;
END
$$;
--> statement-breakpoint
CREATE OR REPLACE FUNCTION gaffer_task_node_running() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  old_holds boolean := TG_OP <> 'INSERT' AND OLD.node_id IS NOT NULL AND OLD.status IN ('pending', 'running');
  new_holds boolean := TG_OP <> 'DELETE' AND NEW.node_id IS NOT NULL AND NEW.status IN ('pending', 'running');
BEGIN
  -- pending -> running on one node, and writes to other columns, change no count: no node lock.
  IF old_holds THEN
    IF new_holds AND NEW.node_id = OLD.node_id THEN
      RETURN NULL;
    END IF;
    PERFORM gaffer_recount_node_running(OLD.node_id);
  END IF;
  IF new_holds THEN
    PERFORM gaffer_recount_node_running(NEW.node_id);
  END IF;
  RETURN NULL;
END
$$;
--> statement-breakpoint
CREATE TRIGGER tasks_node_running AFTER INSERT OR DELETE OR UPDATE OF node_id, status ON tasks
  FOR EACH ROW EXECUTE FUNCTION gaffer_task_node_running();
--> statement-breakpoint
-- The trigger holds a lock on tasks until this migration commits, so no change slips between.
UPDATE nodes SET running = c.n
  FROM (SELECT node_id, count(*)::int AS n FROM tasks WHERE node_id IS NOT NULL AND status IN ('pending', 'running') GROUP BY node_id) c
  WHERE nodes.id = c.node_id;
