/** More of the admin page's text: the task list, the repository PAT rule, error pages, notifications. */
export const MORE_TEXT = {
  // The task list.
  noTasksMatch: { zh: '没有符合条件的任务', en: 'No tasks match these filters' },
  pageSize: { zh: '每页条数', en: 'Per page' },
  trigger: { zh: '触发方式', en: 'Trigger' },
  // The repository form: when a PAT is needed.
  repoPatRequired: { zh: '推送用的 PAT(必填,除非某个节点已有 PAT)', en: 'PAT to push with (required unless a node carries one)' },
  repoPatOptionalNodes: { zh: '推送用的 PAT(可选:已有节点带着 PAT)', en: 'PAT to push with (optional: a node carries one)' },
  repoPatRule: {
    zh: '在这里添加的仓库没有安装 GitHub App,节点需要一个 PAT 才能克隆和推送:填写这个仓库的 PAT,或先在“凭证”页为某个节点添加 PAT。安装了 GitHub App 的仓库会自动出现,不需要 PAT。file:// 仓库随便填一个即可。',
    en: 'A repository added here has no GitHub App installation, so nodes need a PAT to clone and push: give this repository a PAT, or first add a PAT for a node on the Credentials page. Repositories where the App is installed appear by themselves and need none. For a file:// repository any value will do.',
  },
  patRequiredRefused: {
    zh: '未保存:这个仓库没有 GitHub App 安装,也没有节点带着 PAT,没有 PAT 就无法启动任务。请填写 PAT。',
    en: 'Not saved: this repository has no GitHub App installation and no node carries a PAT, so no task could start without one. Give it a PAT.',
  },
  patNeedsKey: {
    zh: '未保存:未配置 CREDENTIAL_KEY,无法保存 PAT,而这个仓库没有 PAT 就无法启动任务。',
    en: 'Not saved: CREDENTIAL_KEY is not set, so no PAT can be stored, and this repository could not start a task without one.',
  },
  repositoryExists: { zh: '未保存:这个仓库已经存在。', en: 'Not saved: this repository exists already.' },
  // Error pages, by HTTP status.
  problem400: { zh: '请求无效。', en: 'The request is not valid.' },
  problem401: { zh: '请先登录。', en: 'Sign in first.' },
  problem403: { zh: '你没有权限执行这个操作。', en: 'You may not do this.' },
  problem404: { zh: '这个页面或对象不存在。', en: 'This page or item does not exist.' },
  problem409: { zh: '与当前状态冲突。', en: 'This conflicts with the current state.' },
  problem413: { zh: '请求太大。', en: 'The request is too large.' },
  problem422: { zh: '输入有误,请检查后重试。', en: 'Some input is not valid; check it and try again.' },
  problem429: { zh: '尝试次数过多,请稍后再试。', en: 'Too many attempts; try again later.' },
  problem503: { zh: '服务缺少配置,或依赖的服务暂不可用。', en: 'Something is not configured, or a service it depends on is unavailable.' },
  problemOther: { zh: '服务器出错了。', en: 'The server failed.' },
  problemDetail: { zh: '详细信息', en: 'Details' },
  // Outcomes of finished tasks.
  outcome_success: { zh: '成功', en: 'Success' },
  outcome_no_changes: { zh: '没有改动', en: 'No changes' },
  outcome_agent_error: { zh: '智能体出错', en: 'Agent error' },
  outcome_infra_error: { zh: '基础设施出错', en: 'Infrastructure error' },
  outcome_timeout: { zh: '超时', en: 'Timed out' },
  outcome_hung: { zh: '卡住(无输出)', en: 'Hung (no output)' },
  outcome_budget_exceeded: { zh: '超出预算', en: 'Budget exceeded' },
  outcome_cancelled: { zh: '已取消', en: 'Cancelled' },
  // The task page's queue and usage.
  etaSoon: { zh: '不到一分钟', en: 'less than a minute' },
  etaMinutes: { zh: '约 {n} 分钟', en: 'about {n} min' },
  etaHours: { zh: '约 {n} 小时', en: 'about {n} h' },
  capDay: { zh: '{what}已达到每天 {n} 个任务的上限', en: '{what} reached its limit of {n} tasks per day' },
  capConcurrent: { zh: '{what}已有 {n} 个任务在运行,达到上限', en: '{what} has {n} tasks running, its limit' },
  capRepository: { zh: '仓库 {name}', en: 'repository {name}' },
  capInstallation: { zh: '安装 {name}', en: 'installation {name}' },
  usageLine: { zh: '输入 {in} 词元,输出 {out} 词元', en: '{in} tokens in, {out} out' },
  usageTurns: { zh: '{n} 轮', en: '{n} turns' },
  // Notifications.
  notifyNoKey: {
    zh: '未配置 CREDENTIAL_KEY:无法保存 webhook 签名密钥。',
    en: 'CREDENTIAL_KEY is not set: webhook signing secrets cannot be stored.',
  },
  notifyNoSmtp: { zh: '未配置 SMTP_URL:无法发送邮件通知。', en: 'SMTP_URL is not set: email notifications cannot be sent.' },
  notifyKind_webhook: { zh: 'Webhook', en: 'Webhook' },
  notifyKind_email: { zh: '邮件', en: 'Email' },
  notifyEvent_task_finished: { zh: '任务完成', en: 'Task finished' },
  notifyEvent_task_failed: { zh: '任务失败', en: 'Task failed' },
  notifyEvent_pr_merged: { zh: 'PR 已合入', en: 'Pull request merged' },
  delivery_pending: { zh: '等待发送', en: 'Pending' },
  delivery_delivered: { zh: '已送达', en: 'Delivered' },
  delivery_failed: { zh: '失败', en: 'Failed' },
  addTarget: { zh: '添加通知目标', en: 'Add a notification target' },
  noTargetsYet: { zh: '还没有通知目标', en: 'No notification targets yet' },
  noDeliveries: { zh: '还没有投递记录', en: 'No deliveries yet' },
  addressPlaceholder: { zh: 'https://example.com/hook 或 ops@example.com', en: 'https://example.com/hook or ops@example.com' },
  // Toasts of the Start button: the page's words first, then the server's reason.
  toastStartFailed: { zh: '启动失败', en: 'Could not start' },
  toastNoCredential: {
    zh: '无法启动:这个仓库没有可用的凭证。请安装 GitHub App,或在“凭证”页添加 PAT。',
    en: 'Cannot start: this repository has no usable credential. Install the GitHub App on it, or add a PAT on the Credentials page.',
  },
  toastNotStartable: { zh: '无法启动:只有“待处理”或“已终止”的 issue 可以启动。', en: 'Cannot start: only pending or terminated issues can be started.' },
  toastOffline: { zh: '无法连接服务器', en: 'The server cannot be reached' },
  // The setup page's organization form: it chooses, it does not filter.
  setupUseOrg: { zh: '使用该组织', en: 'Use this organization' },
  ephemeralToken: { zh: '用于临时节点(--ephemeral)', en: 'For ephemeral nodes (--ephemeral)' },
  ephemeralNode: { zh: '临时', en: 'ephemeral' },
  ephemeralNodeHint: { zh: '执行一个任务后注销并从此列表中消失', en: 'Takes one task, then deregisters and leaves this list' },
  ephemeralTokenHint: {
    zh: '临时节点只执行一个任务,随后注销并从节点列表中消失(用于自动扩缩容)。此令牌只能注册临时节点,临时节点也只能用此类令牌注册。可用次数最多 1,000,000。',
    en: 'An ephemeral node takes one task, then deregisters and leaves the Nodes page (for autoscaling). Such a token registers only ephemeral nodes, and ephemeral nodes register only with such a token. Up to 1,000,000 uses.',
  },
} as const satisfies Record<string, { zh: string; en: string }>;
