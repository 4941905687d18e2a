import type { ProbotOctokit } from 'probot';
import { STATUS_MARKER } from '../domain/status-comment.js';
import { statusOf } from './errors.js';

type Octokit = InstanceType<typeof ProbotOctokit>;

/**
 * Keeps one status comment on an issue: updates the known one, else finds Gaffer's by its hidden
 * marker, else creates it. Returns its id. Safe to call again after a redelivery.
 */
export async function ensureStatusComment(
  octokit: Octokit,
  params: { owner: string; repo: string; issueNumber: number; knownId: number | null; body: string },
): Promise<number> {
  const { owner, repo, body } = params;
  if (params.knownId !== null) {
    try {
      await octokit.rest.issues.updateComment({ owner, repo, comment_id: params.knownId, body });
      return params.knownId;
    } catch (err) {
      if (statusOf(err) !== 404) throw err;
    }
  }
  const comments = await octokit.paginate(octokit.rest.issues.listComments, {
    owner,
    repo,
    issue_number: params.issueNumber,
    per_page: 100,
  });
  const mine = comments.find((c) => c.user?.type === 'Bot' && c.body?.includes(STATUS_MARKER));
  if (mine) {
    if (mine.body !== body) await octokit.rest.issues.updateComment({ owner, repo, comment_id: mine.id, body });
    return mine.id;
  }
  const { data } = await octokit.rest.issues.createComment({ owner, repo, issue_number: params.issueNumber, body });
  return data.id;
}
