/**
 * Whether a change touches what judges it: tests, CI, the verify commands' own scripts, or the
 * agent's configuration. A candidate that does so may pass by weakening the judge rather than by
 * fixing the code, so it ranks below one that does not (see rank-candidates.ts). Path rules only:
 * the changed paths are all a ranking has for every candidate, deletions included.
 */

/** Which rule a path matched. */
export type TouchRule = 'test' | 'test_config' | 'ci' | 'verify_script' | 'agent_config';

/** One changed path and the rule it matched, with a few words on why. */
export type TouchMatch = { path: string; rule: TouchRule; why: string };

/** What a rule is called in a pull request or status table. */
export const TOUCH_RULE_LABELS: Record<TouchRule, string> = {
  test: 'tests',
  test_config: 'test configuration',
  ci: 'CI configuration',
  verify_script: "the verify commands' scripts",
  agent_config: 'agent configuration',
};

// Folders that hold tests in most ecosystems (any depth): tests/, __tests__/, spec/, src/test/ (Maven, Gradle), testdata/ (Go).
const TEST_DIRS = new Set(['test', 'tests', '__tests__', 'spec', 'specs', 'e2e', '__snapshots__', '__mocks__', 'testdata', 'test_data', 'testing']);

// File names that are tests by the convention of their language.
const TEST_FILE_RES: Array<[RegExp, string]> = [
  [/\.(test|spec|e2e|cy)\.[cm]?[jt]sx?$/i, 'a JavaScript/TypeScript test file'],
  [/\.snap$/i, 'a test snapshot'],
  [/^test_.+\.py$|_tests?\.py$|^conftest\.py$/i, 'a Python test file'],
  [/_test\.go$/, 'a Go test file'],
  [/_(spec|test)\.rb$/, 'a Ruby test file'],
  [/(Test|Tests|IT|Spec)\.(java|kt|kts|scala|groovy)$/, 'a JVM test class'],
  [/Tests?\.(cs|fs|vb)$/, 'a .NET test file'],
  [/Tests?\.php$/, 'a PHP test file'],
  [/_test\.(exs|dart|rs|cc|cpp|c|cxx)$|_unittest\.(cc|cpp)$|^test_.+\.(c|cc|cpp)$/, 'a test file'],
  [/Tests?\.swift$/, 'a Swift test file'],
  [/\.bats$/, 'a Bats test file'],
];

// Test runners' own configuration: loosening it (skipping a folder, lowering a threshold) passes tests too.
const TEST_CONFIG_RE =
  /^(jest|vitest|karma|playwright|cypress|ava|wdio)\.config\.[cm]?[jt]s$|^\.mocharc(\.[a-z]+)?$|^\.nycrc(\.[a-z]+)?$|^(pytest\.ini|tox\.ini|noxfile\.py|\.coveragerc|codecov\.ya?ml|phpunit\.xml(\.dist)?|\.rspec|karma\.conf\.js)$/i;

// CI configuration, GitHub's and the other common hosts'. `.github/gaffer.yml` names the verify commands.
const CI_RES: Array<[RegExp, string]> = [
  [/^\.github\/workflows\//, 'a GitHub Actions workflow'],
  [/^\.github\/actions\//, 'a GitHub Action of the repository'],
  [/^\.github\/gaffer\.ya?ml$/, "Gaffer's own repository configuration"],
  [/^\.gitlab-ci\.ya?ml$|^\.circleci\/|^\.travis\.ya?ml$|^Jenkinsfile$|^azure-pipelines\.ya?ml$|^\.buildkite\/|^\.drone\.ya?ml$|^bitbucket-pipelines\.ya?ml$/, 'CI configuration'],
];

// Agent CLIs' instructions and settings, at any depth where the CLI reads nested ones (AGENTS.md, CLAUDE.md, GEMINI.md).
const AGENT_DIRS = new Set(['.claude', '.gemini', '.codex', '.cursor', '.aider']);
const AGENT_FILE_RE = /^(AGENTS\.md|CLAUDE\.md|CLAUDE\.local\.md|GEMINI\.md|\.cursorrules|\.aider\.conf\.ya?ml|\.aiderignore|\.mcp\.json)$/;

// Tools whose script table lives in a file of their own, by the command word that runs them.
const SCRIPT_FILES: Array<[RegExp, RegExp, string]> = [
  [/^(npm|npx|yarn|pnpm|bun)$/, /(^|\/)package\.json$/, 'package.json holds the scripts'],
  [/^(make|gmake)$/, /(^|\/)(GNUmakefile|[Mm]akefile)$|\.mk$/, 'the Makefile'],
  [/^just$/, /(^|\/)[Jj]ustfile$|(^|\/)\.justfile$/, 'the justfile'],
  [/^rake$/, /(^|\/)Rakefile$/, 'the Rakefile'],
  [/^task$/, /(^|\/)Taskfile\.ya?ml$/, 'the Taskfile'],
  [/^composer$/, /(^|\/)composer\.json$/, 'composer.json holds the scripts'],
  [/^deno$/, /(^|\/)deno\.jsonc?$/, 'deno.json holds the tasks'],
  [/^tox$/, /(^|\/)tox\.ini$/, 'tox.ini'],
  [/^nox$/, /(^|\/)noxfile\.py$/, 'noxfile.py'],
];

/** Splits a shell command into words, dropping operators, so `cd app && ./run.sh` gives its programs and paths. */
function shellWords(command: string): string[] {
  return command
    .split(/[\s;&|()<>`]+/)
    .map((w) => w.replace(/^['"]|['"]$/g, ''))
    .filter((w) => w.length > 0 && !w.includes('='));
}

/** A repository-relative path, without `./` and trailing `/`. */
const normal = (p: string) => p.replace(/^(\.\/)+/, '').replace(/\/+$/, '');

/**
 * What the verify commands run from the repository: the files holding their tools' script tables
 * (package.json for `npm test`, the Makefile for `make check`) and every path they name
 * (`./scripts/ci.sh`, `python tools/check.py`).
 */
function verifySources(verifyCommands: readonly string[]): { files: Array<[RegExp, string]>; paths: Set<string> } {
  const files: Array<[RegExp, string]> = [];
  const paths = new Set<string>();
  for (const command of verifyCommands) {
    const words = shellWords(command);
    for (const [word, file, why] of SCRIPT_FILES) {
      if (words.some((w) => word.test(w)) && !files.some(([f]) => f === file)) files.push([file, `${why} \`${command}\` runs`]);
    }
    for (const w of words) {
      if (w.startsWith('-') || w.startsWith('/') || w.startsWith('$') || w.includes('..')) continue;
      if (w.includes('/') || /\.(sh|bash|py|js|mjs|cjs|ts|rb|pl|ps1)$/.test(w)) paths.add(normal(w));
    }
  }
  return { files, paths };
}

/** The rule a path matches, first by the strongest claim (a test file) to the weakest. */
function matchPath(path: string, sources: ReturnType<typeof verifySources>): TouchMatch | undefined {
  const p = normal(path);
  const parts = p.split('/');
  const name = parts.at(-1) ?? p;
  const dirs = parts.slice(0, -1);
  for (const [re, why] of TEST_FILE_RES) if (re.test(name)) return { path, rule: 'test', why };
  const testDir = dirs.find((d) => TEST_DIRS.has(d.toLowerCase()) || /\.(Tests?|UnitTests|IntegrationTests)$/.test(d));
  if (testDir) return { path, rule: 'test', why: `under a ${testDir}/ folder` };
  if (TEST_CONFIG_RE.test(name)) return { path, rule: 'test_config', why: "a test runner's configuration" };
  for (const [re, why] of CI_RES) if (re.test(p)) return { path, rule: 'ci', why };
  const agentDir = dirs.find((d) => AGENT_DIRS.has(d));
  if (agentDir) return { path, rule: 'agent_config', why: `under ${agentDir}/` };
  if (AGENT_FILE_RE.test(name) || p === '.github/copilot-instructions.md') return { path, rule: 'agent_config', why: 'agent instructions' };
  for (const [re, why] of sources.files) if (re.test(p)) return { path, rule: 'verify_script', why };
  for (const named of sources.paths) {
    if (p === named || p.startsWith(`${named}/`)) return { path, rule: 'verify_script', why: `a verify command runs ${named}` };
  }
  return undefined;
}

/**
 * The changed paths (added, modified, deleted or renamed; repository-relative) that touch tests,
 * CI, the verify commands' scripts or agent configuration, each with the rule it matched, in the
 * order given. Empty: the change touches none of them.
 */
export function touchesTestsOrConfig(changedPaths: readonly string[], verifyCommands: readonly string[]): TouchMatch[] {
  const sources = verifySources(verifyCommands);
  const matches: TouchMatch[] = [];
  for (const path of changedPaths) {
    const m = matchPath(path, sources);
    if (m) matches.push(m);
  }
  return matches;
}

/** One line for a pull request body or a table cell: which kinds of judge the change touches, and some paths. */
export function describeTouches(matches: readonly TouchMatch[], maxPaths = 3): string {
  if (matches.length === 0) return 'touches no tests, CI or agent configuration';
  const rules = [...new Set(matches.map((m) => TOUCH_RULE_LABELS[m.rule]))];
  const shown = matches.slice(0, maxPaths).map((m) => `\`${m.path.replace(/`/g, "'")}\``);
  const more = matches.length > maxPaths ? ` and ${matches.length - maxPaths} more` : '';
  return `touches ${rules.join(', ')}: ${shown.join(', ')}${more}`;
}
