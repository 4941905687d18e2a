-- Scheduling decisions in batches (issue 22). gaffer_assign_next (migration 0022) made one decision
-- per call, each taking the cluster-wide assignment lock, so the queue drained at the rate of one
-- round trip (and one lock hand-over) per task. gaffer_assign_batch makes up to n decisions under
-- one acquisition of that lock and returns them all; each decision is gaffer_assign_step, the same
-- steps as gaffer_assign_next's, which now just takes the lock and makes one step.
--
-- gaffer_assign_step: one decision, the caller holding the assignment lock. Same rules as 0022:
-- the oldest due queued task past p_after (FIFO, per-repository and per-installation caps counted
-- again under their rows' locks), on the least loaded, then least recently assigned, active,
-- online node with room that carries the task's labels, runs a sandbox when the task requires it
-- and carries a PAT when only a node's PAT can serve the repository; task and node locked SKIP
-- LOCKED, the node's load recounted under its lock before the decision stands. Differences:
--   * an assignment also returns what delivering it needs, so the delivery reads nothing more:
--     {kind: 'assigned', task, node, issue, repository, repository_pat, node_pat}, the PATs being
--     the newest credential rows (ciphertext only) that the delivery would read, or null;
--   * the common node pick (no labels, no node PAT needed) is a static statement walking
--     nodes_pick_idx with LIMIT 1, planned once per connection instead of at every decision;
--   * the node's last_assigned_at and running are written in one update before the task is,
--     so the tasks trigger's recount finds the count right and writes the node row no second
--     time (a count that had gone wrong is still healed by the recount, and still caught below);
--   * a candidate of a best-of-N run (run_id set, migration 0023) goes to a node that holds none of
--     its run's other candidates while such a node has room, and only then to any node (issue 20).
CREATE OR REPLACE FUNCTION gaffer_assign_step(
  p_now timestamptz,
  p_written_at timestamptz,
  p_online_since timestamptz,
  p_after uuid,
  p_sandbox_optional_only boolean,
  p_repo_day integer,
  p_repo_now integer,
  p_inst_day integer,
  p_inst_now integer,
  p_installation_tokens boolean
) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  t tasks%ROWTYPE;
  assigned tasks%ROWTYPE;
  n nodes%ROWTYPE;
  picked nodes%ROWTYPE;
  repo repositories%ROWTYPE;
  iss issues%ROWTYPE;
  repo_pat credentials%ROWTYPE;
  node_pat_row credentials%ROWTYPE;
  after_created timestamptz := '-infinity';
  after_id uuid := '00000000-0000-0000-0000-000000000000';
  since timestamptz := p_now - interval '1 day';
  server_caps boolean := p_repo_day > 0 OR p_repo_now > 0 OR p_inst_day > 0 OR p_inst_now > 0;
  installation_token boolean := false;
  node_pat boolean := false;
  is_constrained boolean;
  excluded uuid[] := '{}';
  pick_where text;
  held integer;
  -- A candidate of a best-of-N run goes to a node holding none of its run's other candidates
  -- while one has room; only then to one that does.
  spread boolean;
BEGIN
  -- In pick order, nodes with room come first: nodes_pick_idx answers at its first entries.
  PERFORM 1 FROM nodes
   WHERE status = 'active' AND last_heartbeat_at > p_online_since AND capacity > running
   ORDER BY (running::float8 / greatest(capacity, 1)), last_assigned_at NULLS FIRST, id LIMIT 1;
  IF NOT FOUND THEN
    RETURN jsonb_build_object('kind', 'full');
  END IF;

  IF p_after IS NOT NULL THEN
    -- Queue order at full precision: JavaScript dates drop Postgres's microseconds.
    SELECT q.created_at, q.id INTO after_created, after_id FROM tasks q WHERE q.id = p_after;
    IF NOT FOUND THEN
      RETURN jsonb_build_object('kind', 'empty');
    END IF;
  END IF;
  -- `'pending'` and `node_id IS NULL` as written in the partial index tasks_queue_idx, which this
  -- walks in order from the key. A task a cap holds back stays queued and is passed over.
  SELECT q.* INTO t FROM tasks q
   WHERE q.status = 'pending' AND q.node_id IS NULL AND q.next_dispatch_at <= p_now
     AND (q.created_at, q.id) > (after_created, after_id)
     AND NOT (p_sandbox_optional_only AND q.sandbox_required)
     AND ((NOT server_caps AND q.repo_max_per_day IS NULL AND q.repo_max_concurrent IS NULL)
          OR NOT EXISTS (SELECT 1 FROM gaffer_cap_hold(q.id, since, p_repo_day, p_repo_now, p_inst_day, p_inst_now)))
   ORDER BY q.created_at, q.id
   LIMIT 1
   FOR UPDATE SKIP LOCKED;
  IF NOT FOUND THEN
    RETURN jsonb_build_object('kind', 'empty');
  END IF;

  IF server_caps OR t.repo_max_per_day IS NOT NULL OR t.repo_max_concurrent IS NOT NULL THEN
    -- Counted again once the cap's rows are locked (repository, then installation, always in that
    -- order), so dispatchers racing for one repository or installation never place one too many.
    PERFORM 1 FROM repositories r JOIN issues i ON i.repository_id = r.id WHERE i.id = t.issue_id FOR UPDATE OF r;
    PERFORM 1 FROM installations ia JOIN repositories r ON r.installation_id = ia.id JOIN issues i ON i.repository_id = r.id
     WHERE i.id = t.issue_id FOR UPDATE OF ia;
    IF EXISTS (SELECT 1 FROM gaffer_cap_hold(t.id, since, p_repo_day, p_repo_now, p_inst_day, p_inst_now)) THEN
      RETURN jsonb_build_object('kind', 'no_node', 'constrained', true, 'task', to_jsonb(t));
    END IF;
  END IF;

  -- Only a node's PAT serves a repository with no installation token (the App configured, the
  -- repository installed) and no PAT of its own: its tasks go to a node that carries one.
  SELECT * INTO iss FROM issues WHERE id = t.issue_id;
  SELECT * INTO repo FROM repositories WHERE id = iss.repository_id;
  IF FOUND THEN
    installation_token := p_installation_tokens AND repo.installation_id IS NOT NULL AND repo.github_id IS NOT NULL;
    IF NOT installation_token THEN
      SELECT * INTO repo_pat FROM credentials WHERE repository_id = repo.id ORDER BY created_at DESC LIMIT 1;
      node_pat := repo_pat.id IS NULL;
    END IF;
  END IF;
  is_constrained := cardinality(t.required_labels) > 0 OR node_pat;
  spread := t.run_id IS NOT NULL;

  FOR tries IN 1..9 LOOP
    IF cardinality(t.required_labels) = 0 AND NOT node_pat AND cardinality(excluded) = 0 AND NOT spread THEN
      -- The common case, static so that its plan is kept: nodes_pick_idx in order, first fit.
      IF t.sandbox_required THEN
        SELECT * INTO n FROM nodes
         WHERE status = 'active' AND last_heartbeat_at > p_online_since AND capacity > running AND sandbox = 'bwrap'
         ORDER BY (running::float8 / greatest(capacity, 1)), last_assigned_at NULLS FIRST, id LIMIT 1 FOR UPDATE SKIP LOCKED;
      ELSE
        SELECT * INTO n FROM nodes
         WHERE status = 'active' AND last_heartbeat_at > p_online_since AND capacity > running
         ORDER BY (running::float8 / greatest(capacity, 1)), last_assigned_at NULLS FIRST, id LIMIT 1 FOR UPDATE SKIP LOCKED;
      END IF;
    ELSE
      -- Planned for this call's values (EXECUTE keeps no generic plan): a generic plan guesses
      -- that `labels @> $n` keeps almost no row, and then reads every node and sorts rather than
      -- walking nodes_pick_idx in order and stopping at the first node that fits. Clauses that do
      -- not apply are left out for the same reason.
      pick_where := 'SELECT * FROM nodes WHERE status = ''active'' AND last_heartbeat_at > $1 AND capacity > running'
        || CASE WHEN cardinality(t.required_labels) > 0 THEN ' AND labels @> $2' ELSE '' END
        || CASE WHEN node_pat THEN ' AND EXISTS (SELECT 1 FROM credentials c WHERE c.node_id = nodes.id)' ELSE '' END
        || CASE WHEN t.sandbox_required THEN ' AND sandbox = ''bwrap''' ELSE '' END
        || CASE WHEN cardinality(excluded) > 0 THEN ' AND id <> ALL ($3)' ELSE '' END
        || CASE WHEN spread THEN ' AND NOT EXISTS (SELECT 1 FROM tasks o WHERE o.run_id = $4 AND o.node_id = nodes.id'
             || ' AND o.status IN (''pending'', ''running''))' ELSE '' END;
      EXECUTE pick_where
        || ' ORDER BY (running::float8 / greatest(capacity, 1)), last_assigned_at NULLS FIRST, id LIMIT 1 FOR UPDATE SKIP LOCKED'
        INTO n USING p_online_since, t.required_labels, excluded, t.run_id;
    END IF;
    IF n.id IS NULL AND spread THEN
      -- Every node with room holds one of the run's candidates: any of them, then.
      spread := false;
      CONTINUE;
    END IF;
    EXIT WHEN n.id IS NULL;
    picked := n;
    -- One new version of the node row per decision: the trigger's recount, as the task is
    -- assigned below, then finds running already right and leaves the row alone.
    UPDATE nodes SET last_assigned_at = p_now, running = n.running + 1 WHERE id = n.id;
    -- The caller's clock when it sent the call, plus the time since (the lock may have been waited
    -- for): the assignment's time on the clock the sweep compares it with.
    UPDATE tasks SET node_id = n.id, updated_at = p_written_at + (clock_timestamp() - statement_timestamp())
     WHERE id = t.id AND status = 'pending' AND node_id IS NULL
     RETURNING * INTO assigned;
    IF NOT FOUND THEN
      UPDATE nodes SET last_assigned_at = picked.last_assigned_at WHERE id = picked.id;
      PERFORM gaffer_recount_node_running(picked.id);
      RETURN jsonb_build_object('kind', 'no_node', 'constrained', is_constrained, 'task', to_jsonb(t));
    END IF;
    -- The node's lock is held, so no other transaction changes its load meanwhile, and the trigger
    -- on tasks has just counted its tasks again (migration 0018): a node this leaves over its
    -- capacity had a `running` gone wrong (healed now), and the task goes back.
    SELECT * INTO n FROM nodes WHERE id = n.id;
    IF n.running > n.capacity THEN
      UPDATE tasks SET node_id = NULL, updated_at = t.updated_at WHERE id = t.id;
      -- Not assigned after all: the node's last assignment stands as it was.
      UPDATE nodes SET last_assigned_at = picked.last_assigned_at WHERE id = picked.id;
      excluded := excluded || picked.id;
      n := NULL;
      CONTINUE;
    END IF;
    IF NOT installation_token AND node_pat THEN
      SELECT * INTO node_pat_row FROM credentials WHERE node_id = n.id ORDER BY created_at DESC LIMIT 1;
    END IF;
    RETURN jsonb_build_object('kind', 'assigned', 'task', to_jsonb(assigned), 'node', to_jsonb(n),
      'issue', to_jsonb(iss), 'repository', to_jsonb(repo),
      'repository_pat', CASE WHEN repo_pat.id IS NULL THEN NULL ELSE to_jsonb(repo_pat) END,
      'node_pat', CASE WHEN node_pat_row.id IS NULL THEN NULL ELSE to_jsonb(node_pat_row) END);
  END LOOP;
  RETURN jsonb_build_object('kind', 'no_node', 'constrained', is_constrained, 'task', to_jsonb(t));
END
$$;
--> statement-breakpoint
-- gaffer_assign_batch: up to p_n steps under one acquisition of the assignment lock, each step's
-- decision returned as a row, in order. Between steps it follows the queue as a pump worker does
-- (src/domain/scheduler.ts, nextWalk): past an assignment it looks again from the same place; past
-- a task that fits no node it walks on after it when the task was constrained, or looks only at
-- tasks that may run unsandboxed when the task only needed a sandbox; any other decision (full,
-- empty, a plain task fitting nowhere) ends the batch. The worker replays the same rules over the
-- rows to know where to go on from.
CREATE OR REPLACE FUNCTION gaffer_assign_batch(
  p_n integer,
  p_now timestamptz,
  p_written_at timestamptz,
  p_online_since timestamptz,
  p_after uuid,
  p_sandbox_optional_only boolean,
  p_repo_day integer,
  p_repo_now integer,
  p_inst_day integer,
  p_inst_now integer,
  p_installation_tokens boolean
) RETURNS SETOF jsonb LANGUAGE plpgsql AS $$
DECLARE
  d jsonb;
  after uuid := p_after;
  sandbox_only boolean := p_sandbox_optional_only;
BEGIN
  PERFORM pg_advisory_xact_lock(hashtext('gaffer:assign'));
  FOR i IN 1..greatest(p_n, 1) LOOP
    d := gaffer_assign_step(p_now, p_written_at, p_online_since, after, sandbox_only,
      p_repo_day, p_repo_now, p_inst_day, p_inst_now, p_installation_tokens);
    RETURN NEXT d;
    CONTINUE WHEN d->>'kind' = 'assigned';
    EXIT WHEN d->>'kind' <> 'no_node';
    after := (d->'task'->>'id')::uuid;
    CONTINUE WHEN (d->>'constrained')::boolean;
    EXIT WHEN sandbox_only OR NOT (d->'task'->>'sandbox_required')::boolean;
    sandbox_only := true;
  END LOOP;
END
$$;
--> statement-breakpoint
-- One decision, as before: the lock, then one step.
CREATE OR REPLACE FUNCTION gaffer_assign_next(
  p_now timestamptz,
  p_written_at timestamptz,
  p_online_since timestamptz,
  p_after uuid,
  p_sandbox_optional_only boolean,
  p_repo_day integer,
  p_repo_now integer,
  p_inst_day integer,
  p_inst_now integer,
  p_installation_tokens boolean
) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_advisory_xact_lock(hashtext('gaffer:assign'));
  RETURN gaffer_assign_step(p_now, p_written_at, p_online_since, p_after, p_sandbox_optional_only,
    p_repo_day, p_repo_now, p_inst_day, p_inst_now, p_installation_tokens);
END
$$;
