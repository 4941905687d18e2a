import type { Probot } from 'probot';
import type { CandidateBranches } from '../domain/ports.js';
import { pullRequestBody } from './client.js';
import { classifyGitHubError, statusOf } from './errors.js';

const split = (fullName: string) => fullName.split('/') as [string, string];

/**
 * The branch writes of best-of-N runs, as the repository's installation. GitHub has no
 * compare-and-swap on refs, so the lease is a read then a forced update: the read refuses a branch
 * someone pushed to since the pick was asked for, and a retry that finds the branch already at the
 * target does nothing.
 */
export function createCandidateBranches(probot: Probot, publicUrl: string): CandidateBranches {
  async function octokitFor(installationId: number | null, fullName: string) {
    if (installationId === null) throw new Error(`${fullName} has no installation`);
    return probot.auth(installationId);
  }
  return {
    moveBranch: async ({ repository, branch, expectedSha, targetSha }) => {
      const octokit = await octokitFor(repository.installationId, repository.fullName);
      const [owner, repo] = split(repository.fullName);
      try {
        let current: string | undefined;
        try {
          current = (await octokit.rest.git.getRef({ owner, repo, ref: `heads/${branch}` })).data.object.sha;
        } catch (err) {
          if (statusOf(err) !== 404) throw err;
        }
        if (current === targetSha) return { kind: 'already' };
        if (current !== expectedSha) return { kind: 'lease_lost', sha: current };
        await octokit.rest.git.updateRef({ owner, repo, ref: `heads/${branch}`, sha: targetSha, force: true });
        return { kind: 'moved' };
      } catch (err) {
        throw classifyGitHubError(err, `moving ${branch} to ${targetSha.slice(0, 12)}`);
      }
    },
    updatePullRequestBody: async ({ repository, issue, task, chosen, number, branch, candidates }) => {
      const octokit = await octokitFor(repository.installationId, repository.fullName);
      const [owner, repo] = split(repository.fullName);
      try {
        await octokit.rest.pulls.update({ owner, repo, pull_number: number, body: pullRequestBody(publicUrl, { issue, task, branch, candidates, chosen }) });
      } catch (err) {
        throw classifyGitHubError(err, `updating pull request #${number}`);
      }
    },
    deleteBranch: async ({ repository, branch }) => {
      const octokit = await octokitFor(repository.installationId, repository.fullName);
      const [owner, repo] = split(repository.fullName);
      try {
        await octokit.rest.git.deleteRef({ owner, repo, ref: `heads/${branch}` });
        return 'deleted';
      } catch (err) {
        // 404: no such branch; 422: "Reference does not exist" (deleted by anyone since).
        const status = statusOf(err);
        if (status === 404 || status === 422) return 'gone';
        throw classifyGitHubError(err, `deleting branch ${branch}`);
      }
    },
  };
}
