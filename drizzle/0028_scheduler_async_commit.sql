-- The assignment's commit does not wait for the WAL flush (issue 22). Profiled at 10,000 queued
-- tasks on PostgreSQL 15, a decision spent about 0.9 ms in gaffer_assign_step and about 4 ms
-- waiting for its commit record to reach the disk, the cluster-wide assignment lock still held
-- (locks are released after the flush), so every dispatcher and replica queued behind that flush:
-- it was most of a decision's latency and the ceiling on the drain. The two entry points now commit
-- with synchronous_commit off, for their own transaction only (set_config's is_local).
--
-- Why losing one is safe. An asynchronous commit is visible to other sessions at once and its
-- changes are ordered in the WAL like any other, so nothing is ever half applied: a crash of the
-- database server (not of Gaffer) within about 3 x wal_writer_delay (600 ms by default) of a
-- decision can only forget the decision whole, and any later synchronous commit (the delivery's
-- compare-and-set to running, a pull node's claim, the record of an installation token, any
-- other write) flushes it first. A forgotten decision leaves the task queued, as before the
-- decision, and it is placed again. If its node had already been handed the task, that node's
-- next heartbeat reports a task the server no longer holds it to, and is told to cancel it
-- (heartbeat's cancel_task_ids), as for any assignment taken back. Locking, FIFO order, caps,
-- labels, sandboxes and the candidate spread are untouched: they depend on what is visible, and
-- that does not change.
--
-- Called inside a larger transaction (the application never does), the setting would cover that
-- transaction too; hence only these two callers set it, and gaffer_assign_step does not.
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
  PERFORM set_config('synchronous_commit', 'off', true);
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
  PERFORM set_config('synchronous_commit', 'off', true);
  PERFORM pg_advisory_xact_lock(hashtext('gaffer:assign'));
  RETURN gaffer_assign_step(p_now, p_written_at, p_online_since, p_after, p_sandbox_optional_only,
    p_repo_day, p_repo_now, p_inst_day, p_inst_now, p_installation_tokens);
END
$$;
