import type { Context } from 'hono';
import { getCookie } from 'hono/cookie';
import type { IssueStatus, TaskStatus } from '../protocol/statuses.js';

/** The admin page's languages: Chinese, as the seed writes its labels, and English. */
export const LANGS = ['zh', 'en'] as const;
export type Lang = (typeof LANGS)[number];

/** The cookie the language switcher sets; it wins over Accept-Language. */
export const LANG_COOKIE = 'gaffer_lang';

/** Colours of the seed's status badges and start buttons; CSS classes carry them. */
export type Colour = 'gray' | 'blue' | 'yellow' | 'green' | 'red' | 'orange';

/** The seed's issue status labels and colours, verbatim, with English beside them. */
export const ISSUE_STATUS_UI: Record<IssueStatus, { zh: string; en: string; colour: Colour }> = {
  pending: { zh: '待处理', en: 'Pending', colour: 'gray' },
  processing: { zh: '处理中', en: 'Processing', colour: 'blue' },
  pending_merge: { zh: '待合入', en: 'Pending merge', colour: 'yellow' },
  merged: { zh: '已合入', en: 'Merged', colour: 'green' },
  terminated: { zh: '已终止', en: 'Terminated', colour: 'red' },
};

/** The seed's Start column: label, colour, whether it can be clicked, and the spinner. */
export const START_BUTTON_UI: Record<
  IssueStatus,
  { zh: string; en: string; colour: Colour; enabled: boolean; spinner: boolean }
> = {
  pending: { zh: '启动', en: 'Start', colour: 'blue', enabled: true, spinner: false },
  processing: { zh: '运行中', en: 'Running', colour: 'blue', enabled: false, spinner: true },
  pending_merge: { zh: '待合入', en: 'Pending merge', colour: 'yellow', enabled: false, spinner: false },
  merged: { zh: '已合入', en: 'Merged', colour: 'green', enabled: false, spinner: false },
  terminated: { zh: '重新启动', en: 'Restart', colour: 'orange', enabled: true, spinner: false },
};

/** Task statuses (seed values) as badges. */
export const TASK_STATUS_UI: Record<TaskStatus, { zh: string; en: string; colour: Colour }> = {
  pending: { zh: '排队中', en: 'Queued', colour: 'gray' },
  running: { zh: '运行中', en: 'Running', colour: 'blue' },
  success: { zh: '成功', en: 'Success', colour: 'green' },
  failed: { zh: '失败', en: 'Failed', colour: 'red' },
};

const TEXT = {
  appName: { zh: 'Gaffer 管理', en: 'Gaffer admin' },
  issues: { zh: 'Issues', en: 'Issues' },
  nodes: { zh: '节点', en: 'Nodes' },
  credentials: { zh: '凭证', en: 'Credentials' },
  statistics: { zh: '统计', en: 'Statistics' },
  signIn: { zh: '登录', en: 'Sign in' },
  signOut: { zh: '退出', en: 'Sign out' },
  email: { zh: '邮箱', en: 'Email' },
  password: { zh: '密码', en: 'Password' },
  repository: { zh: '仓库', en: 'Repository' },
  status: { zh: '状态', en: 'Status' },
  title: { zh: '标题', en: 'Title' },
  start: { zh: '启动', en: 'Start' },
  all: { zh: '全部', en: 'All' },
  filter: { zh: '筛选', en: 'Filter' },
  newer: { zh: '← 较新', en: '← Newer' },
  older: { zh: '较旧 →', en: 'Older →' },
  noIssues: { zh: '没有 issue', en: 'No issues' },
  updated: { zh: '更新时间', en: 'Updated' },
  created: { zh: '创建时间', en: 'Created' },
  owner: { zh: '负责人', en: 'Owner' },
  labels: { zh: '标签', en: 'Labels' },
  body: { zh: '描述', en: 'Description' },
  tasks: { zh: '任务', en: 'Tasks' },
  noTasks: { zh: '还没有任务', en: 'No tasks yet' },
  task: { zh: '任务', en: 'Task' },
  issue: { zh: 'Issue', en: 'Issue' },
  node: { zh: '节点', en: 'Node' },
  attempt: { zh: '尝试次数', en: 'Attempt' },
  taskKind: { zh: '任务类型', en: 'Kind' },
  followUp: { zh: 'PR 跟进', en: 'Follow-up' },
  issueRun: { zh: 'issue 任务', en: 'Issue run' },
  runOptions: { zh: '运行选项', en: 'Run options' },
  branch: { zh: '分支', en: 'Branch' },
  pullRequest: { zh: '拉取请求', en: 'Pull request' },
  command: { zh: '命令', en: 'Command' },
  startedAt: { zh: '开始时间', en: 'Started' },
  completedAt: { zh: '完成时间', en: 'Completed' },
  errorMessage: { zh: '错误信息', en: 'Error' },
  failureKind: { zh: '失败类型', en: 'Failure kind' },
  log: { zh: '日志', en: 'Log' },
  logLive: { zh: '实时', en: 'live' },
  logEmpty: { zh: '(暂无日志)', en: '(no log yet)' },
  online: { zh: '在线', en: 'Online' },
  offline: { zh: '离线', en: 'Offline' },
  draining: { zh: '排空中', en: 'Draining' },
  stopping: { zh: '关闭中', en: 'Shutting down' },
  active: { zh: '接收任务', en: 'Active' },
  load: { zh: '负载', en: 'Load' },
  lastHeartbeat: { zh: '最后心跳', en: 'Last heartbeat' },
  sandbox: { zh: '沙箱', en: 'Sandbox' },
  agentCli: { zh: '智能体 CLI', en: 'Agent CLI' },
  sandboxBwrap: { zh: 'bubblewrap 沙箱', en: 'bubblewrap' },
  sandboxOff: { zh: '无沙箱', en: 'No sandbox' },
  sandboxOffHint: {
    zh: '该节点的 AI CLI 不在沙箱中运行(GAFFER_SANDBOX=off),要求沙箱的仓库的任务不会分配给它。',
    en: 'This node runs the AI CLI without a sandbox (GAFFER_SANDBOX=off); tasks of repositories that require a sandbox never go to it.',
  },
  name: { zh: '名称', en: 'Name' },
  actions: { zh: '操作', en: 'Actions' },
  drain: { zh: '排空', en: 'Drain' },
  resume: { zh: '恢复', en: 'Resume' },
  remove: { zh: '移除', en: 'Remove' },
  noNodes: { zh: '没有节点', en: 'No nodes' },
  never: { zh: '从未', en: 'never' },
  addPat: { zh: '添加 PAT', en: 'Add a PAT' },
  token: { zh: '令牌', en: 'Token' },
  target: { zh: '用于', en: 'For' },
  lastFour: { zh: '末四位', en: 'Last 4' },
  delete: { zh: '删除', en: 'Delete' },
  add: { zh: '添加', en: 'Add' },
  noCredentials: { zh: '没有凭证', en: 'No credentials' },
  patNeverShown: {
    zh: '令牌加密保存,之后不再显示,只显示末四位。',
    en: 'The token is stored encrypted and never shown again; only its last 4 characters are.',
  },
  noCredentialKey: {
    zh: '未配置 CREDENTIAL_KEY,无法保存 PAT。请设置 32 字节的密钥(64 个十六进制字符)后重启服务。',
    en: 'CREDENTIAL_KEY is not set, so PATs cannot be stored. Set a 32-byte key (64 hex characters) and restart the server.',
  },
  period: { zh: '时间范围', en: 'Period' },
  byStatus: { zh: '按状态', en: 'By status' },
  successRate: { zh: '成功率', en: 'Success rate' },
  median: { zh: '中位耗时', en: 'Median duration' },
  p90: { zh: 'P90 耗时', en: 'p90 duration' },
  perNode: { zh: '按节点', en: 'Per node' },
  perRepository: { zh: '按仓库', en: 'Per repository' },
  total: { zh: '总数', en: 'Total' },
  finished: { zh: '已结束', en: 'Finished' },
  unassigned: { zh: '(未分配)', en: '(unassigned)' },
  last24h: { zh: '最近 24 小时', en: 'Last 24 hours' },
  last7d: { zh: '最近 7 天', en: 'Last 7 days' },
  last30d: { zh: '最近 30 天', en: 'Last 30 days' },
  last90d: { zh: '最近 90 天', en: 'Last 90 days' },
  allTime: { zh: '全部', en: 'All time' },
  notFound: { zh: '未找到', en: 'Not found' },
  error: { zh: '出错了', en: 'Something went wrong' },
  back: { zh: '返回', en: 'Back' },
  confirmRemove: { zh: '确定移除?', en: 'Remove it?' },
  switchLang: { zh: 'English', en: '中文' },
  live: { zh: '实时更新', en: 'Live' },
  none: { zh: '—', en: '—' },
  mode: { zh: '模式', en: 'Mode' },
  push: { zh: '推送', en: 'Push' },
  pull: { zh: '拉取', en: 'Pull' },
  registrationTokens: { zh: '注册令牌', en: 'Registration tokens' },
  newRegistrationToken: { zh: '新建注册令牌', en: 'New registration token' },
  noRegistrationTokens: { zh: '没有注册令牌', en: 'No registration tokens' },
  expires: { zh: '过期时间', en: 'Expires' },
  expiresInHours: { zh: '有效期(小时)', en: 'Valid for (hours)' },
  uses: { zh: '已用 / 次数', en: 'Used / uses' },
  maxUses: { zh: '可用次数', en: 'Uses' },
  allowedLabels: { zh: '允许的标签', en: 'Allowed labels' },
  allowedLabelsHint: {
    zh: '逗号分隔;以 * 结尾表示前缀,如 agent:*(节点自带的 agent 标签也需允许)。留空则不允许任何标签。',
    en: 'Comma-separated; a trailing * allows a prefix, e.g. agent:* (the agent label a node adds itself must be allowed too). Empty allows no labels.',
  },
  maxCapacity: { zh: '最大容量', en: 'Max capacity' },
  allowReplace: { zh: '允许替换同名节点(--replace)', en: 'May replace a node of the same name (--replace)' },
  ephemeralToken: { zh: '用于临时节点(--ephemeral)', en: 'For ephemeral nodes (--ephemeral)' },
  ephemeralNode: { zh: '临时', en: 'ephemeral' },
  ephemeralNodeHint: { zh: '执行一个任务后注销并从此列表中消失', en: 'Takes one task, then deregisters and leaves this list' },
  ephemeralTokenHint: {
    zh: '临时节点只执行一个任务,随后注销并从节点列表中消失(用于自动扩缩容)。此令牌只能注册临时节点,临时节点也只能用此类令牌注册。可用次数最多 1,000,000。',
    en: 'An ephemeral node takes one task, then deregisters and leaves the Nodes page (for autoscaling). Such a token registers only ephemeral nodes, and ephemeral nodes register only with such a token. Up to 1,000,000 uses.',
  },
  revoke: { zh: '吊销', en: 'Revoke' },
  usable: { zh: '可用', en: 'Usable' },
  expired: { zh: '已过期', en: 'Expired' },
  used_up: { zh: '已用完', en: 'Used up' },
  revoked: { zh: '已吊销', en: 'Revoked' },
  create: { zh: '创建', en: 'Create' },
  tokenShownOnce: {
    zh: '请现在复制此令牌:它只显示这一次。节点用它注册一次后,改用自己的凭证。',
    en: 'Copy this token now: it is shown only once. A node exchanges it once for a credential of its own.',
  },
  yes: { zh: '是', en: 'yes' },
  no: { zh: '否', en: 'no' },
  // Issue 13: outcomes, usage, queue, time to first PR, notifications.
  outcome: { zh: '结果', en: 'Outcome' },
  usage: { zh: '用量', en: 'Usage' },
  queueReason: { zh: '排队原因', en: 'Waiting because' },
  queueEta: { zh: '预计开始', en: 'Expected start' },
  queuePosition: { zh: '队列位置', en: 'Queue position' },
  byOutcome: { zh: '按结果', en: 'By outcome' },
  timeToFirstPr: { zh: '首个 PR 用时(中位数,自 webhook 起)', en: 'Time to first PR (median, from the webhook)' },
  toClaim: { zh: '节点领取', en: 'Node claimed' },
  toFirstLog: { zh: '首行日志', en: 'First log line' },
  toPr: { zh: 'PR 已创建', en: 'PR opened' },
  notifications: { zh: '通知', en: 'Notifications' },
  deliveries: { zh: '投递记录', en: 'Deliveries' },
  kind: { zh: '类型', en: 'Kind' },
  address: { zh: '地址', en: 'Address' },
  events: { zh: '事件', en: 'Events' },
  scope: { zh: '范围', en: 'Scope' },
  secret: { zh: '签名密钥', en: 'Signing secret' },
  attempts: { zh: '尝试次数', en: 'Attempts' },
  result: { zh: '结果', en: 'Result' },
  everything: { zh: '全部', en: 'Everything' },
  user: { zh: '用户', en: 'User' },
  repositories: { zh: '仓库', en: 'Repositories' },
  addRepository: { zh: '添加仓库', en: 'Add a repository' },
  fullName: { zh: '名称(owner/name)', en: 'Name (owner/name)' },
  cloneUrl: { zh: '克隆地址', en: 'Clone URL' },
  defaultBranch: { zh: '默认分支', en: 'Default branch' },
  sandboxRequired: { zh: '只交给沙箱节点(推荐)', en: 'Sandboxed nodes only (recommended)' },
  sandboxOptional: { zh: '也可交给无沙箱节点', en: 'Unsandboxed nodes too' },
  repoPat: { zh: '推送用的 PAT(可选)', en: 'PAT to push with (optional)' },
  repoPatHint: {
    zh: '节点用它克隆和推送;没有 GitHub App 时,仓库或节点需要一个 PAT。file:// 仓库随便填即可。',
    en: 'Nodes clone and push with it; without the GitHub App a repository or node needs a PAT. For a file:// repository any value will do.',
  },
  credential: { zh: '凭证', en: 'Credential' },
  hasPat: { zh: '有 PAT', en: 'PAT stored' },
  noPat: { zh: '无凭证', en: 'No credential' },
  viaApp: { zh: 'GitHub App', en: 'GitHub App' },
  noRepositories: {
    zh: '还没有仓库。在下面添加一个(或安装 GitHub App,仓库会自动出现)。',
    en: 'No repositories yet. Add one below (or install the GitHub App, and they appear by themselves).',
  },
  addIssue: { zh: '添加 issue', en: 'Add an issue' },
  numberOptional: { zh: '编号(留空则自动)', en: 'Number (blank: next free)' },
  noIssuesNext: {
    zh: '还没有 issue。添加仓库后,在本页下方添加 issue;安装了 GitHub App 的仓库,issue 会自动同步。',
    en: 'No issues yet. Add a repository, then add an issue below; with the GitHub App installed, issues sync by themselves.',
  },
  noIssuesNeedRepo: { zh: '先添加一个仓库:', en: 'First add a repository:' },
  noNodesNext: {
    zh: '还没有节点。在装有 git 和 AI CLI 的机器上,于 Gaffer 的代码目录中运行下面的命令,节点会注册并出现在这里:',
    en: 'No nodes yet. On a machine with git and your AI CLI, in a checkout of Gaffer, run this command; the node registers and appears here:',
  },
  addNode: { zh: '添加节点', en: 'Add a node' },
  nodeCommandHint: {
    zh: '节点在 bubblewrap 沙箱中运行 AI CLI(apt-get install bubblewrap)。在另一台机器上运行时,把 GAFFER_NODE_PUBLIC_URL 设为服务器能访问到的地址;GAFFER_AGENT 可选 claude、codex、aider、gemini。',
    en: 'The node runs the AI CLI in a bubblewrap sandbox (apt-get install bubblewrap). On another machine, set GAFFER_NODE_PUBLIC_URL to an address the server can reach; GAFFER_AGENT is claude, codex, aider or gemini.',
  },
  noRegistrationToken: {
    zh: '未设置 NODE_REGISTRATION_TOKEN,节点无法注册。设置一个至少 16 个字符的令牌后重启服务。',
    en: 'NODE_REGISTRATION_TOKEN is not set, so no node can register. Set a token of at least 16 characters and restart the server.',
  },
  noTargets: {
    zh: '还没有仓库或节点可选:先添加仓库',
    en: 'There is no repository or node to choose yet: first add a repository',
  },
  orRegisterNode: { zh: '或注册一个节点', en: 'or register a node' },
  setupTitle: { zh: '创建 GitHub App', en: 'Create the GitHub App' },
  setupIntro: {
    zh: '按 app.yml 的权限和事件,在 GitHub 上为本服务器创建 App。GitHub 会跳回这里,Gaffer 把 App 的 id、私钥和 webhook 密钥保存在数据目录中。',
    en: "Creates the App on GitHub with app.yml's permissions and events, pointed at this server. GitHub sends you back here, and Gaffer keeps the App's id, key and webhook secret in the data folder.",
  },
  setupOrg: { zh: '组织(可选)', en: 'Organization (optional)' },
  setupWebhook: { zh: 'Webhook 地址:', en: 'Webhook URL:' },
  setupCreate: { zh: '在 GitHub 上创建 App', en: 'Create the App on GitHub' },
  setupProxy: {
    zh: '本机开发时 GitHub 无法访问 localhost:用 smee-client 转发 webhook(见 README)。',
    en: 'GitHub cannot reach localhost: for local development forward webhooks with smee-client (see the README).',
  },
  setupConfigured: { zh: '已配置 GitHub App:', en: 'A GitHub App is configured:' },
  setupCreated: { zh: 'App 已创建:', en: 'App created:' },
  setupRestart: { zh: '重启 Gaffer 以启用它。', en: 'Restart Gaffer to use it.' },
  setupInstall: { zh: '把 App 安装到仓库上', en: 'Install the App on your repositories' },
  noApp: { zh: '未配置 GitHub App。', en: 'No GitHub App is configured.' },
  retireBootstrap: { zh: '停用引导令牌', en: 'Retire the bootstrap token' },
  retireBootstrapHint: {
    zh: '停用后 NODE_REGISTRATION_TOKEN 永久失效(即使仍在环境变量或数据目录中),已注册的节点不受影响;之后用注册令牌添加节点。',
    en: 'Retired, NODE_REGISTRATION_TOKEN registers nothing more, for good (even while it is still in the environment or the data folder); registered nodes keep working. Add nodes with registration tokens then.',
  },
  retireBootstrapConfirm: { zh: '永久停用引导令牌?', en: 'Retire the bootstrap token for good?' },
  bootstrapRetired: {
    zh: '引导令牌(NODE_REGISTRATION_TOKEN)已停用。用注册令牌添加节点:',
    en: 'The bootstrap token (NODE_REGISTRATION_TOKEN) is retired. Add nodes with a registration token:',
  },
  account: { zh: '我的账号', en: 'My account' },
  changePassword: { zh: '修改密码', en: 'Change password' },
  currentPassword: { zh: '当前密码', en: 'Current password' },
  newPassword: { zh: '新密码(至少 8 个字符)', en: 'New password (at least 8 characters)' },
  confirmPassword: { zh: '再次输入新密码', en: 'New password again' },
  changePasswordHint: {
    zh: '修改后,你在所有设备上的登录都会失效,本浏览器会自动重新登录。',
    en: 'Changing it signs you out everywhere; this browser is signed in again.',
  },
  passwordChanged: { zh: '密码已修改,其他会话已全部退出。', en: 'Password changed; every other session was signed out.' },
  admins: { zh: '管理员', en: 'Admins' },
  addAdmin: { zh: '添加管理员', en: 'Add an admin' },
  addAdminHint: {
    zh: '已有账号的用户会成为管理员,密码改为这里给出的(或生成的)密码。生成的密码只显示一次。',
    en: 'An existing user becomes an admin, with the password given here (or generated). A generated password is shown once.',
  },
  generatedWhenEmpty: { zh: '(留空则自动生成)', en: '(generated when empty)' },
  shownOnce: { zh: '只显示这一次', en: 'shown once' },
  you: { zh: '(你自己)', en: '(you)' },
  createApp: { zh: '创建一个', en: 'Create one' },
} as const satisfies Record<string, Record<Lang, string>>;

/** The key of a piece of page text. */
export type TextKey = keyof typeof TEXT;

/** A translator for one language. */
export type T = (key: TextKey) => string;

/** The page text in one language. */
export function translator(lang: Lang): T {
  return (key) => TEXT[key][lang];
}

/**
 * The page language: the switcher's cookie, else the first of zh/en in Accept-Language by
 * q-value, else Chinese, the seed's language.
 */
export function chooseLang(cookie: string | undefined, acceptLanguage: string | undefined): Lang {
  if (cookie === 'zh' || cookie === 'en') return cookie;
  const ranked = (acceptLanguage ?? '')
    .split(',')
    .map((part, i) => {
      const [tag = '', ...params] = part.trim().split(';');
      const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
      return { lang: tag.trim().toLowerCase().split('-')[0], q: q ? Number(q.slice(2)) || 0 : 1, i };
    })
    .filter((x) => x.q > 0)
    .sort((a, b) => b.q - a.q || a.i - b.i);
  for (const r of ranked) if (r.lang === 'zh' || r.lang === 'en') return r.lang;
  return 'zh';
}

/** The request's language. */
export function langOf(c: Context): Lang {
  return chooseLang(getCookie(c, LANG_COOKIE), c.req.header('accept-language'));
}
