import type { AuditQueryResult } from '../../shared/audit/audit-query.ts';
import { formatAge, groupAlertsByKind } from '../../shared/ops/index.ts';
import type { AlertRefresh, DeadLetter, DeadLetterCount, OperationsAlert } from '../../shared/ops/index.ts';
import { RESOLVABLE_KINDS, RESOLVABLE_STATES, pendingResolution } from '../../shared/saga/index.ts';
import type { Saga, SagaState } from '../../shared/saga/index.ts';
import { html } from './html.ts';
import type { SafeHtml } from './html.ts';

/** What every page of a logged-in person needs. */
export interface PageContext {
  operator: string;
  /** The session's CSRF token, put in every form. */
  csrf: string;
  /** Whether resolve actions are wired. */
  canResolve: boolean;
  /** A message from the action before (shown once). */
  flash?: string;
}


function layout(title: string, context: PageContext | undefined, body: SafeHtml): SafeHtml {
  const nav =
    context === undefined
      ? html``
      : html`<nav><a href="/">Attention</a> <a href="/alerts">Alerts</a> <a href="/dead-letters">Dead letters</a> <a href="/audit">Audit</a>
<form method="get" action="/find" class="find"><input name="id" placeholder="EndToEndId, RequestId or saga id" aria-label="find a saga" required maxlength="200"><button>Find</button></form>
<form method="post" action="/logout" class="logout">${csrfField(context)}<span>${context.operator}</span><button>Log out</button></form></nav>`;
  const flash = context?.flash === undefined ? html`` : html`<p class="flash" role="status">${context.flash}</p>`;
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>${title} · selo console</title><link rel="stylesheet" href="/console.css"></head>
<body><header><strong>selo</strong> operations console</header>${nav}<main><h1>${title}</h1>${flash}${body}</main></body></html>
`;
}

function csrfField(context: PageContext): SafeHtml {
  return html`<input type="hidden" name="csrf" value="${context.csrf}">`;
}

function sagaLink(sagaId: string | undefined): SafeHtml {
  return sagaId === undefined || sagaId.startsWith('INBOX#') ? html`${sagaId ?? '—'}` : html`<a href="/sagas/${encodeURIComponent(sagaId)}">${sagaId}</a>`;
}

function facts(values: Readonly<Record<string, string>>): SafeHtml {
  const entries = Object.entries(values);
  return entries.length === 0 ? html`` : html`<dl class="facts">${entries.map(([k, v]) => html`<dt>${k}</dt><dd>${v}</dd>`)}</dl>`;
}

/** The login form: the token printed at start, and the person's name. */
export function loginPage(input: { error?: string }): SafeHtml {
  return layout(
    'Log in',
    undefined,
    html`${input.error === undefined ? html`` : html`<p class="error" role="alert">${input.error}</p>`}
<form method="post" action="/login" class="login">
<label>Your name <input name="operator" required maxlength="100" autocomplete="username"></label>
<label>Console token <input name="token" type="password" required autocomplete="current-password"></label>
<button>Log in</button></form>
<p class="note">The token was printed by <code>selo console</code> when it started. Your name is recorded with every action you take.</p>`,
  );
}

function alertRows(alerts: readonly (OperationsAlert & { ageSeconds: number })[], context: PageContext, withAck: boolean): SafeHtml {
  return html`<table><thead><tr><th>Alert</th><th>Age</th><th>Saga</th><th>Raised</th><th>Open while</th><th>Details</th>${withAck ? html`<th></th>` : html``}</tr></thead><tbody>
${alerts.map(
  (a) => html`<tr><td><code>${a.alertId}</code></td><td>${formatAge(a.ageSeconds)}</td><td>${sagaLink(a.sagaId)}</td><td>${a.count}×</td><td>${a.raisedIn ?? 'acknowledged by hand'}</td><td>${facts(a.facts)}</td>${
    withAck
      ? html`<td>${
          a.raisedIn === undefined
            ? html`<form method="post" action="/alerts/${a.alertId}/ack" class="inline">${csrfField(context)}<input name="note" required maxlength="500" placeholder="what was done" aria-label="note"><button>Acknowledge</button></form>`
            : html`ends when the saga is resolved`
        }</td>`
      : html``
  }</tr>
`,
)}</tbody></table>`;
}

function alertGroups(open: readonly OperationsAlert[], now: Date, context: PageContext, withAck: boolean): SafeHtml {
  const groups = groupAlertsByKind(open, now);
  if (groups.length === 0) return html`<p class="ok">No open alerts.</p>`;
  return html`${groups.map((g) => html`<h3>${g.kind} <span class="count">${g.alerts.length}</span></h3>${alertRows(g.alerts, context, withAck)}`)}`;
}

function deadLetterTable(counts: readonly DeadLetterCount[]): SafeHtml {
  return html`<table><thead><tr><th>Queue</th><th>DLQ</th><th>Messages</th></tr></thead><tbody>${counts.map(
    (c) => html`<tr${c.messages > 0 ? html` class="warn"` : html``}><td><a href="/dead-letters/${encodeURIComponent(c.queue)}">${c.queue}</a></td><td>${c.dlqName}</td><td>${c.messages}</td></tr>`,
  )}</tbody></table>`;
}

/** Sagas in IN_DOUBT, OUTCOME_CONFLICT and COMPENSATION_FAILED; open alerts; dead letters. */
export function overviewPage(context: PageContext, input: { attention: readonly { state: SagaState; sagas: readonly Saga[] }[]; open: readonly OperationsAlert[]; deadLetters: readonly DeadLetterCount[]; now: Date }): SafeHtml {
  const sections = input.attention.map(
    ({ state, sagas }) => html`<section><h2>${state} <span class="count">${sagas.length}</span></h2>${
      sagas.length === 0
        ? html`<p class="ok">None.</p>`
        : html`<table><thead><tr><th>Saga</th><th>Since</th><th>Last reason</th></tr></thead><tbody>${sagas.map(
            (s) => html`<tr><td>${sagaLink(s.sagaId)}</td><td>${s.updatedAt}</td><td>${s.history.at(-1)?.reason ?? ''}</td></tr>`,
          )}</tbody></table>`
    }</section>`,
  );
  return layout(
    'Needs attention',
    context,
    html`${sections}<section><h2>Open alerts <span class="count">${input.open.length}</span></h2>${alertGroups(input.open, input.now, context, false)}<p><a href="/alerts">All alerts, and acknowledging them</a></p></section>
<section><h2>Dead letters</h2>${deadLetterTable(input.deadLetters)}</section>`,
  );
}

function resolutionForms(context: PageContext, saga: Saga): SafeHtml {
  if (!context.canResolve) return html``;
  const base = `/sagas/${encodeURIComponent(saga.sagaId)}`;
  const forms: SafeHtml[] = [];
  const pending = pendingResolution(saga);
  if (RESOLVABLE_STATES.includes(saga.state) && RESOLVABLE_KINDS.includes(saga.kind) && pending === undefined) {
    const [settled, rejected] = saga.kind === 'inbound' ? ['InboundPaymentSettled: core banking credits', 'InboundPaymentRejected: never credited'] : ['PaymentSettled', 'PaymentRejected, then compensated'];
    forms.push(html`<form method="post" action="${base}/resolve" class="action"><h2>Resolve</h2>${csrfField(context)}
<fieldset><legend>How did the payment end?</legend>
<label><input type="radio" name="outcome" value="settled" required> settled (${settled})</label>
<label><input type="radio" name="outcome" value="rejected"> rejected (${rejected})</label></fieldset>
<label>Evidence <textarea name="evidence" required maxlength="500" rows="3" placeholder="what the BCB or the SPI desk said; no personal data"></textarea></label>
<label>Reason code for a rejection <input name="reasonCode" maxlength="4" pattern="[A-Z0-9]{4}" placeholder="NARR"></label>
<button>Resolve</button></form>`);
  }
  if (pending !== undefined) {
    forms.push(html`<form method="post" action="${base}/approve" class="action"><h2>Approve the pending resolution</h2>${csrfField(context)}
<p><strong>${pending.outcome}</strong>, requested by ${pending.operator} at ${pending.requestedAt}: ${pending.evidence}</p>
<p>A second operator applies it; the one who asked cannot.</p><button>Approve</button></form>`);
  }
  if (saga.state === 'COMPENSATION_FAILED') {
    forms.push(html`<form method="post" action="${base}/retry-compensation" class="action"><h2>Retry the compensation</h2>${csrfField(context)}
<label>Why it may work now <input name="evidence" maxlength="500"></label><button>Retry compensation</button></form>`);
  }
  return html`${forms}`;
}

/** One saga: state, ids, history, compensations, facts, and the actions its state allows. */
export function sagaPage(context: PageContext, saga: Saga): SafeHtml {
  const ids: Record<string, string> = {};
  for (const f of ['endToEndId', 'bizMsgIdr', 'requestId'] as const) if (saga[f] !== undefined) ids[f] = saga[f];
  return layout(
    saga.sagaId,
    context,
    html`<p class="state state-${saga.state}">${saga.state}</p>
<p>${saga.kind}, version ${saga.version}; created ${saga.createdAt}, updated ${saga.updatedAt}</p>
${facts(ids)}
<h2>History</h2>
<table><thead><tr><th>At</th><th>From</th><th>To</th><th>Attempt</th><th>Key</th><th>Reason</th></tr></thead><tbody>${saga.history.map(
      (t) => html`<tr><td>${t.at}</td><td>${t.from ?? '—'}</td><td>${t.to}</td><td>${t.attempt}</td><td><code>${t.key}</code></td><td>${t.reason}</td></tr>`,
    )}</tbody></table>
<h2>Compensations</h2>${
      saga.compensations.length === 0
        ? html`<p>None registered.</p>`
        : html`<table><thead><tr><th>#</th><th>Step</th><th>Action</th><th>Status</th><th>Attempts</th><th>Last error</th></tr></thead><tbody>${saga.compensations.map(
            (c) => html`<tr><td>${c.seq}</td><td>${c.step}</td><td>${c.action}</td><td>${c.status}</td><td>${c.attempts}</td><td>${c.lastError ?? ''}</td></tr>`,
          )}</tbody></table>`
    }
${Object.keys(saga.facts).length === 0 ? html`` : html`<h2>Facts</h2>${facts(saga.facts)}`}
${resolutionForms(context, saga)}`,
  );
}

/** Open alerts by kind, with age; the ones no saga settles can be acknowledged. */
export function alertsPage(context: PageContext, input: { refresh: AlertRefresh; now: Date }): SafeHtml {
  const { drained, acknowledged } = input.refresh;
  return layout(
    'Open alerts',
    context,
    html`<p class="note">Read ${drained.received} new message(s) from the operations queue; ${acknowledged.length} alert(s) acknowledged because their saga was resolved.</p>
${alertGroups(input.refresh.open, input.now, context, true)}`,
  );
}

/** Each DLQ and how many messages wait in it. */
export function deadLettersPage(context: PageContext, counts: readonly DeadLetterCount[]): SafeHtml {
  return layout('Dead letters', context, deadLetterTable(counts));
}

/** What a dead letter is about, from the start of its body: its event's detail-type and saga, nothing else (the body may hold personal data). */
function subjectOf(letter: DeadLetter): string {
  const kind = /"detail-type"\s*:\s*"([A-Za-z]{1,64})"/.exec(letter.preview)?.[1];
  const saga = /"sagaId"\s*:\s*"([A-Z]{2,5}#[A-Za-z0-9-]{1,64})"/.exec(letter.preview)?.[1];
  return [kind, saga].filter((x) => x !== undefined).join(' ');
}

/** One DLQ's messages (not consumed) and the replay form. */
export function queueDeadLettersPage(context: PageContext, queue: string, letters: readonly DeadLetter[]): SafeHtml {
  return layout(
    `Dead letters of ${queue}`,
    context,
    html`${
      letters.length === 0
        ? html`<p class="ok">The DLQ is empty.</p>`
        : html`<table><thead><tr><th>Message</th><th>Error code</th><th>Reason</th><th>From queue</th><th>Receives</th><th>About</th></tr></thead><tbody>${letters.map(
            (l) => html`<tr><td><code>${l.messageId}</code></td><td>${l.code ?? '(receive budget spent)'}</td><td>${l.reason ?? ''}</td><td>${l.sourceQueue ?? ''}</td><td>${l.receiveCount ?? '?'}</td><td>${subjectOf(l)}</td></tr>`,
          )}</tbody></table>
<form method="post" action="/dead-letters/${encodeURIComponent(queue)}/replay" class="action"><h2>Replay</h2>${csrfField(context)}
<p>Each message is sent back to ${queue} first, then deleted from the DLQ. Safe: every step is idempotent.</p>
<label>How many <input name="max" type="number" min="1" max="1000" value="${Math.min(10, Math.max(1, letters.length))}"></label><button>Replay to ${queue}</button></form>`
    }`,
  );
}

/** The audit query form, and its result. */
export function auditPage(context: PageContext, input: { query?: { sql: string; from: string; to: string; system: string }; result?: AuditQueryResult; error?: string }): SafeHtml {
  const q = input.query ?? { sql: "SELECT recorded_at, worker, saga_id, kind, transition_to, transition_reason, response_status_code FROM audit ORDER BY recorded_at DESC LIMIT 50", from: '', to: '', system: '' };
  const shown = input.result?.rows.slice(0, 500) ?? [];
  const cell = (value: unknown): string => (value === null || value === undefined ? '' : typeof value === 'string' ? value : JSON.stringify(value));
  return layout(
    'Audit trail',
    context,
    html`<form method="post" action="/audit" class="audit">${csrfField(context)}
<label>SQL over the table <code>audit</code> (DuckDB) <textarea name="sql" rows="4" required maxlength="20000">${q.sql}</textarea></label>
<label>From <input name="from" value="${q.from}" placeholder="24 h before To"></label>
<label>To <input name="to" value="${q.to}" placeholder="now"></label>
<label>System <select name="system"><option value="">both</option><option value="spi"${q.system === 'spi' ? html` selected` : html``}>spi</option><option value="dict"${q.system === 'dict' ? html` selected` : html``}>dict</option></select></label>
<button>Run</button></form>
${input.error === undefined ? html`` : html`<p class="error" role="alert">${input.error}</p>`}
${
  input.result === undefined
    ? html``
    : html`<p class="note">${input.result.rows.length} row(s) from ${input.result.objects} Parquet object(s)${input.result.rows.length > shown.length ? html`; the first ${shown.length} shown` : html``}.</p>
<div class="scroll"><table class="result"><thead><tr>${input.result.columns.map((c) => html`<th>${c}</th>`)}</tr></thead><tbody>${shown.map(
        (row) => html`<tr>${input.result?.columns.map((c) => html`<td>${cell(row[c]).slice(0, 300)}</td>`)}</tr>`,
      )}</tbody></table></div>`
}`,
  );
}

/** A page that says what went wrong. */
export function errorPage(context: PageContext, status: number, message: string): SafeHtml {
  return layout(status === 404 ? 'Not found' : 'Refused', context, html`<p class="error" role="alert">${message}</p>`);
}
