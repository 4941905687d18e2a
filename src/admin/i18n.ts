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
