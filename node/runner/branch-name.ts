/**
 * The branch for one attempt: prefix + issue number + the first 8 characters of the task id, so
 * a retry (a new task) never collides with an earlier attempt's branch. Sanitised to what
 * `git check-ref-format --branch` accepts.
 */
export function branchName(prefix: string, issueNumber: number, taskId: string): string {
  const suffix = taskId.replace(/[^A-Za-z0-9]/g, '').slice(0, 8).toLowerCase();
  return sanitizeRefName(`${prefix}${issueNumber}-${suffix}`);
}

/** Rewrites a string into a valid branch name, replacing what git forbids with "-". */
export function sanitizeRefName(raw: string): string {
  let name = raw
    // Control characters, space and the characters git reserves for revision syntax.
    .replace(/[\x00-\x20\x7f~^:?*[\\]+/g, '-')
    .replace(/@\{/g, '-')
    .replace(/\.{2,}/g, '.')
    .replace(/\/{2,}/g, '/');
  name = name
    .split('/')
    .map((part) => part.replace(/^\.+/, '').replace(/\.lock$/i, '-lock').replace(/\.+$/, ''))
    .filter((part) => part.length > 0)
    .join('/');
  name = name.replace(/^-+/, '').replace(/[/.]+$/, '');
  if (name === '' || name === '@') name = 'gaffer';
  return name.slice(0, 200);
}
