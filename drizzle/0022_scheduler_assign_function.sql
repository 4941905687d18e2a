-- One scheduling decision in one statement. The scheduler used to make a decision in about a
-- dozen round trips inside one transaction (the assignment lock, the queue, the caps, the
-- repository's credentials, the node, a recount, the assignment, last_assigned_at); the same steps,
-- in the same order and under the same locks, now run here, so a decision costs one round trip.
--
-- gaffer_cap_hold: the first cap (repository before installation, daily before concurrent) that
-- holds a task back, with the numbers to show; no row when none does. Both the decision and the
-- queue view (capHolding) ask it, so the two never disagree. A cap is the lower of the server's
-- (p_*, 0: none) and the task's own from its repository config; installation caps are the
-- server's only.
CREATE OR REPLACE FUNCTION gaffer_cap_hold(
  p_task uuid, p_since timestamptz, p_repo_day integer, p_repo_now integer, p_inst_day integer, p_inst_now integer
) RETURNS TABLE (cap_scope text, cap_period text, cap_limit integer, cap_used integer, cap_name text)
LANGUAGE plpgsql STABLE AS $$
DECLARE
  repo uuid;
  repo_name text;
  inst bigint;
  account text;
  own_day integer;
  own_now integer;
  lim integer;
  used integer;
BEGIN
  SELECT tr.id, tr.full_name, tr.installation_id, ia.account_login, t.repo_max_per_day, t.repo_max_concurrent
    INTO repo, repo_name, inst, account, own_day, own_now
    FROM tasks t JOIN issues ti ON ti.id = t.issue_id JOIN repositories tr ON tr.id = ti.repository_id
    LEFT JOIN installations ia ON ia.id = tr.installation_id
   WHERE t.id = p_task;
  IF NOT FOUND THEN
    RETURN;
  END IF;
  -- A task counts against a day when it started in the window or is on its way to a node now; it
  -- holds a slot while on a node (assigned or running).
  lim := CASE WHEN p_repo_day > 0 THEN least(p_repo_day, coalesce(own_day, p_repo_day)) ELSE own_day END;
  IF lim > 0 THEN
    SELECT count(*)::int INTO used FROM tasks c JOIN issues ci ON ci.id = c.issue_id
     WHERE ci.repository_id = repo AND (c.started_at >= p_since OR (c.status = 'pending' AND c.node_id IS NOT NULL));
    IF used >= lim THEN
      RETURN QUERY SELECT 'repository'::text, 'day'::text, lim, used, repo_name;
      RETURN;
    END IF;
  END IF;
  lim := CASE WHEN p_repo_now > 0 THEN least(p_repo_now, coalesce(own_now, p_repo_now)) ELSE own_now END;
  IF lim > 0 THEN
    SELECT count(*)::int INTO used FROM tasks c JOIN issues ci ON ci.id = c.issue_id
     WHERE ci.repository_id = repo AND (c.status = 'running' OR (c.status = 'pending' AND c.node_id IS NOT NULL));
    IF used >= lim THEN
      RETURN QUERY SELECT 'repository'::text, 'concurrent'::text, lim, used, repo_name;
      RETURN;
    END IF;
  END IF;
  IF inst IS NULL THEN
    RETURN;
  END IF;
  IF p_inst_day > 0 THEN
    SELECT count(*)::int INTO used FROM tasks c JOIN issues ci ON ci.id = c.issue_id JOIN repositories cr ON cr.id = ci.repository_id
     WHERE cr.installation_id = inst AND (c.started_at >= p_since OR (c.status = 'pending' AND c.node_id IS NOT NULL));
    IF used >= p_inst_day THEN
      RETURN QUERY SELECT 'installation'::text, 'day'::text, p_inst_day, used, coalesce(account, 'installation');
      RETURN;
    END IF;
  END IF;
  IF p_inst_now > 0 THEN
    SELECT count(*)::int INTO used FROM tasks c JOIN issues ci ON ci.id = c.issue_id JOIN repositories cr ON cr.id = ci.repository_id
     WHERE cr.installation_id = inst AND (c.status = 'running' OR (c.status = 'pending' AND c.node_id IS NOT NULL));
    IF used >= p_inst_now THEN
      RETURN QUERY SELECT 'installation'::text, 'concurrent'::text, p_inst_now, used, coalesce(account, 'installation');
      RETURN;
    END IF;
  END IF;
END
$$;
--> statement-breakpoint
-- gaffer_assign_next: takes the oldest due queued task past p_after and puts it on the best
-- eligible node, holding the cluster-wide assignment lock, so decisions are made one at a time and
-- the queue stays FIFO across dispatchers, replicas, push and pull nodes. The task and the node are
-- locked SKIP LOCKED; caps are counted again once the repository's and installation's rows are
-- locked; the node's load, recounted by the tasks trigger under the node's lock as the task is
-- assigned, is checked against its capacity before the decision stands. Returns jsonb:
--   {kind: 'full'}      no node has room for anything (the queue is not read);
--   {kind: 'empty'}     no due queued task past p_after (that the caps let through);
--   {kind: 'no_node', constrained, task}  the task fits no node now; constrained: it asked more than
--                       any node has (labels, a node's PAT) or a cap held it, so others may still fit;
--   {kind: 'assigned', task, node}        the rows as written.
-- Rows are to_jsonb of the table rows, keyed by column name. Every statement takes a fresh
-- snapshot (read committed, volatile function) after the lock, as the separate statements did.
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
DECLARE
  t tasks%ROWTYPE;
  assigned tasks%ROWTYPE;
  n nodes%ROWTYPE;
  repo repositories%ROWTYPE;
  after_created timestamptz := '-infinity';
  after_id uuid := '00000000-0000-0000-0000-000000000000';
  since timestamptz := p_now - interval '1 day';
  server_caps boolean := p_repo_day > 0 OR p_repo_now > 0 OR p_inst_day > 0 OR p_inst_now > 0;
  node_pat boolean := false;
  is_constrained boolean;
  excluded uuid[] := '{}';
  pick_where text;
  held integer;
BEGIN
  PERFORM pg_advisory_xact_lock(hashtext('gaffer:assign'));
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
  SELECT r.* INTO repo FROM repositories r JOIN issues i ON i.repository_id = r.id WHERE i.id = t.issue_id;
  IF FOUND THEN
    node_pat := NOT (p_installation_tokens AND repo.installation_id IS NOT NULL AND repo.github_id IS NOT NULL)
      AND NOT EXISTS (SELECT 1 FROM credentials c WHERE c.repository_id = repo.id);
  END IF;
  is_constrained := cardinality(t.required_labels) > 0 OR node_pat;

  -- Planned for this call's values (EXECUTE keeps no generic plan): a generic plan guesses that
  -- `labels @> $n` keeps almost no row, and then reads every node and sorts rather than walking
  -- nodes_pick_idx in order and stopping at the first node that fits. Clauses that do not apply
  -- are left out for the same reason.
  pick_where := 'SELECT * FROM nodes WHERE status = ''active'' AND last_heartbeat_at > $1 AND capacity > running'
    || CASE WHEN cardinality(t.required_labels) > 0 THEN ' AND labels @> $2' ELSE '' END
    || CASE WHEN node_pat THEN ' AND EXISTS (SELECT 1 FROM credentials c WHERE c.node_id = nodes.id)' ELSE '' END
    || CASE WHEN t.sandbox_required THEN ' AND sandbox = ''bwrap''' ELSE '' END;
  FOR tries IN 1..8 LOOP
    EXECUTE pick_where
      || CASE WHEN cardinality(excluded) > 0 THEN ' AND id <> ALL ($3)' ELSE '' END
      || ' ORDER BY (running::float8 / greatest(capacity, 1)), last_assigned_at NULLS FIRST, id LIMIT 1 FOR UPDATE SKIP LOCKED'
      INTO n USING p_online_since, t.required_labels, excluded;
    EXIT WHEN n.id IS NULL;
    -- The caller's clock when it sent the call, plus the time since (the lock may have been waited
    -- for): the assignment's time on the clock the sweep compares it with.
    UPDATE tasks SET node_id = n.id, updated_at = p_written_at + (clock_timestamp() - statement_timestamp())
     WHERE id = t.id AND status = 'pending' AND node_id IS NULL
     RETURNING * INTO assigned;
    IF NOT FOUND THEN
      RETURN jsonb_build_object('kind', 'no_node', 'constrained', is_constrained, 'task', to_jsonb(t));
    END IF;
    -- The node's lock is held, so no other transaction changes its load meanwhile, and the trigger
    -- on tasks has just counted its tasks again (migration 0018): a node this leaves over its
    -- capacity had a `running` gone wrong (healed now), and the task goes back.
    SELECT running INTO held FROM nodes WHERE id = n.id;
    IF held > n.capacity THEN
      UPDATE tasks SET node_id = NULL, updated_at = t.updated_at WHERE id = t.id;
      excluded := excluded || n.id;
      CONTINUE;
    END IF;
    UPDATE nodes SET last_assigned_at = p_now WHERE id = n.id RETURNING * INTO n;
    RETURN jsonb_build_object('kind', 'assigned', 'task', to_jsonb(assigned), 'node', to_jsonb(n));
  END LOOP;
  RETURN jsonb_build_object('kind', 'no_node', 'constrained', is_constrained, 'task', to_jsonb(t));
END
$$;
