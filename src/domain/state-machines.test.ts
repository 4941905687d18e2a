import { describe, expect, it } from 'vitest';
import { DomainError } from './errors.js';
import { ISSUE_STATUSES, type IssueEvent, issueTransition } from './issue-status.js';
import { NODE_STATUSES, type NodeEvent, nodeTransition } from './node-status.js';
import { expectTransition } from './state-machine.js';
import { TASK_STATUSES, type TaskEvent, taskTransition } from './task-status.js';

const ISSUE_LEGAL: Record<string, string> = {
  'pending:start': 'processing',
  'terminated:start': 'processing',
  'processing:succeed': 'pending_merge',
  'processing:fail': 'terminated',
  'pending_merge:merge': 'merged',
  'pending_merge:close_unmerged': 'terminated',
};
const ISSUE_EVENTS: IssueEvent[] = ['start', 'succeed', 'fail', 'merge', 'close_unmerged'];

const TASK_LEGAL: Record<string, string> = {
  'pending:accept': 'running',
  'pending:fail': 'failed',
  'running:succeed': 'success',
  'running:fail': 'failed',
};
const TASK_EVENTS: TaskEvent[] = ['accept', 'succeed', 'fail'];

describe('issue transitions', () => {
  for (const from of ISSUE_STATUSES) {
    for (const event of ISSUE_EVENTS) {
      const expected = ISSUE_LEGAL[`${from}:${event}`];
      it(`${from} --${event}--> ${expected ?? 'illegal'}`, () => {
        const result = issueTransition(from, event);
        if (expected) expect(result).toEqual({ ok: true, from, to: expected });
        else expect(result.ok).toBe(false);
      });
    }
  }

  it('merged is final', () => {
    for (const event of ISSUE_EVENTS) expect(issueTransition('merged', event).ok).toBe(false);
  });
});

describe('task transitions', () => {
  for (const from of TASK_STATUSES) {
    for (const event of TASK_EVENTS) {
      const expected = TASK_LEGAL[`${from}:${event}`];
      it(`${from} --${event}--> ${expected ?? 'illegal'}`, () => {
        const result = taskTransition(from, event);
        if (expected) expect(result).toEqual({ ok: true, from, to: expected });
        else expect(result.ok).toBe(false);
      });
    }
  }
});

const NODE_LEGAL: Record<string, string> = {
  'active:drain': 'draining',
  'stopping:drain': 'draining',
  'draining:resume': 'active',
  'stopping:resume': 'active',
  'active:shut_down': 'stopping',
  'stopping:register': 'active',
};
const NODE_EVENTS: NodeEvent[] = ['drain', 'resume', 'shut_down', 'register'];

describe('node transitions', () => {
  for (const from of NODE_STATUSES) {
    for (const event of NODE_EVENTS) {
      const expected = NODE_LEGAL[`${from}:${event}`];
      it(`${from} --${event}--> ${expected ?? 'illegal'}`, () => {
        const result = nodeTransition(from, event);
        if (expected) expect(result).toEqual({ ok: true, from, to: expected });
        else expect(result.ok).toBe(false);
      });
    }
  }
});

describe('expectTransition', () => {
  it('throws a typed error that names the state and what is allowed', () => {
    let caught: unknown;
    try {
      expectTransition('issue 7', issueTransition('merged', 'start'));
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(DomainError);
    const err = caught as DomainError;
    expect(err.code).toBe('illegal_transition');
    expect(err.message).toBe('issue 7 is merged: cannot start (allowed from merged: none)');
    expect(err.details).toEqual({ from: 'merged', event: 'start' });
  });

  it('lists the allowed events', () => {
    expect(() => expectTransition('issue 8', issueTransition('processing', 'merge'))).toThrow(
      'allowed from processing: succeed, fail',
    );
  });
});
