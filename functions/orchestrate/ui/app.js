// The dev console: the workflows from GET /v1/workflows drawn as graphs, a form that runs one
// with POST /v1/run as server-sent events, and the events folded into the step tree as they
// arrive (the same fold as the engine's run state: run/state.rs). Plain DOM and SVG, no
// dependencies. EventSource cannot POST, so the stream is read with fetch's body reader;
// cancelling aborts that request, which cancels the run on the server.
'use strict';

const SVG_NS = 'http://www.w3.org/2000/svg';
const $ = (selector) => document.querySelector(selector);

/** An element with attributes (`class`, `text`, `on*` handlers, the rest as attributes). */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  setAttrs(node, attrs);
  for (const child of children.flat()) {
    if (child !== null && child !== undefined && child !== false) {
      node.append(child instanceof Node ? child : String(child));
    }
  }
  return node;
}

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  setAttrs(node, attrs);
  for (const child of children.flat()) if (child) node.append(child);
  return node;
}

function setAttrs(node, attrs) {
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'text') node.textContent = value;
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? '' : value);
  }
}

const state = {
  workflows: [],
  selected: null, // the workflow's name
  runs: [], // newest first: {key, id, workflow, input, status, error, started, events, fold}
  viewing: null, // the run shown
  controller: null, // the AbortController of the run in flight
};

// --- Errors -----------------------------------------------------------------------------------

/** The common error body ({error, status, code}) of a response, as one line. */
async function errorOf(response) {
  const text = await response.text().catch(() => '');
  try {
    const body = JSON.parse(text);
    if (body && body.error) return `${response.status} ${body.code || ''}: ${body.error}`;
  } catch (_) { /* not JSON */ }
  return `${response.status} ${response.statusText}${text ? ': ' + text.slice(0, 300) : ''}`;
}

// --- Workflows and their graphs ---------------------------------------------------------------

async function loadWorkflows() {
  const list = $('#workflows');
  try {
    const response = await fetch('/v1/workflows', { headers: { accept: 'application/json' } });
    if (!response.ok) throw new Error(await errorOf(response));
    state.workflows = (await response.json()).workflows;
  } catch (e) {
    list.replaceChildren(el('li', { class: 'error', text: `Cannot list the workflows: ${e.message}` }));
    return;
  }
  renderWorkflowList();
  if (state.workflows.length) select(state.workflows[0].name);
}

function renderWorkflowList() {
  $('#workflows').replaceChildren(...state.workflows.map((w) => el('li', {
    class: w.name === state.selected ? 'selected' : '',
    'data-workflow': w.name,
    onclick: () => select(w.name),
  }, el('b', { text: w.name }), el('small', {
    text: `${w.agents.length} agent${w.agents.length === 1 ? '' : 's'}` +
      (w.workers.length ? ` + ${w.workers.length} worker${w.workers.length === 1 ? '' : 's'}` : '') +
      (w.description ? ` · ${w.description}` : ''),
  }))));
}

function select(name) {
  state.selected = name;
  renderWorkflowList();
  $('#run-workflow').textContent = name;
  drawGraph();
}

const NODE_W = 168, NODE_H = 46, GAP_X = 64, GAP_Y = 22, PAD = 12;

/** Columns by longest path from the entries; workers in a row beneath their delegators. */
function layout(workflow) {
  const level = new Map(workflow.agents.map((a) => [a.name, 0]));
  // Longest path, bounded by the node count (the configuration refuses cycles).
  for (let i = 0; i < workflow.agents.length; i++) {
    let changed = false;
    for (const e of workflow.edges) {
      const next = Math.min((level.get(e.from) ?? 0) + 1, workflow.agents.length);
      if ((level.get(e.to) ?? 0) < next) { level.set(e.to, next); changed = true; }
    }
    if (!changed) break;
  }
  const columns = [];
  for (const agent of workflow.agents) {
    const c = level.get(agent.name);
    (columns[c] ||= []).push(agent);
  }
  const pos = new Map();
  let rows = 0;
  columns.forEach((column = [], c) => {
    column.forEach((agent, r) => pos.set(agent.name, {
      x: PAD + c * (NODE_W + GAP_X), y: PAD + r * (NODE_H + GAP_Y), agent, worker: false,
    }));
    rows = Math.max(rows, column.length);
  });
  const workerY = PAD + rows * (NODE_H + GAP_Y) + 18;
  const delegations = [];
  let nextX = PAD;
  for (const agent of [...workflow.agents, ...workflow.workers]) {
    const config = agent.planner_config || agent.supervisor_config;
    for (const worker of config ? config.workers : []) delegations.push([agent.name, worker]);
  }
  for (const worker of workflow.workers) {
    const boss = delegations.find(([, w]) => w === worker.name);
    const bossX = boss && pos.get(boss[0]) ? pos.get(boss[0]).x : PAD;
    const x = Math.max(nextX, bossX);
    pos.set(worker.name, { x, y: workerY, agent: worker, worker: true });
    nextX = x + NODE_W + 16;
  }
  let width = 0, height = 0;
  for (const p of pos.values()) {
    width = Math.max(width, p.x + NODE_W + PAD);
    height = Math.max(height, p.y + NODE_H + PAD);
  }
  return { pos, delegations, width, height };
}

function drawGraph() {
  const workflow = state.workflows.find((w) => w.name === state.selected);
  const box = $('#graph');
  if (!workflow) { box.replaceChildren(); return; }
  const { pos, delegations, width, height } = layout(workflow);
  const defs = svg('defs', {}, svg('marker', {
    id: 'arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse',
  }, svg('path', { d: 'M 0 0 L 10 5 L 0 10 z' })));
  const edges = [];
  for (const e of workflow.edges) {
    const a = pos.get(e.from), b = pos.get(e.to);
    if (!a || !b) continue;
    const x1 = a.x + NODE_W, y1 = a.y + NODE_H / 2, x2 = b.x, y2 = b.y + NODE_H / 2;
    const mid = (x1 + x2) / 2;
    edges.push(svg('path', {
      class: 'edge', d: `M ${x1} ${y1} C ${mid} ${y1}, ${mid} ${y2}, ${x2 - 2} ${y2}`, 'marker-end': 'url(#arrow)',
      'data-from': e.from, 'data-to': e.to,
    }));
    if (e.when) {
      // Just before the arrow, where edges from one classifier no longer overlap.
      const width = 7 * e.when.length + 8;
      const lx = x2 - 10 - width / 2, ly = y2 - 6;
      edges.push(svg('rect', { class: 'edge-label-bg', x: lx - width / 2, y: ly - 11, width, height: 15, rx: 3 }));
      edges.push(svg('text', { class: 'edge-label', x: lx, y: ly, 'text-anchor': 'middle' }, document.createTextNode(e.when)));
    }
  }
  for (const [from, to] of delegations) {
    const a = pos.get(from), b = pos.get(to);
    if (!a || !b) continue;
    const x1 = a.x + NODE_W / 2, y1 = a.y + NODE_H, x2 = b.x + NODE_W / 2, y2 = b.y;
    edges.push(svg('path', {
      class: 'edge delegates', d: `M ${x1} ${y1} C ${x1} ${(y1 + y2) / 2}, ${x2} ${(y1 + y2) / 2}, ${x2} ${y2 - 2}`,
      'marker-end': 'url(#arrow)',
    }));
  }
  const nodes = [...pos.values()].map(({ x, y, agent, worker }) => {
    const classes = ['node', `role-${agent.role}`];
    if (worker) classes.push('worker');
    if (workflow.entries.includes(agent.name)) classes.push('entry');
    if (workflow.exit === agent.name) classes.push('exit');
    const sub = agent.role + (agent.model ? ` · ${agent.model.model}` : '');
    const title = [
      `${agent.name} (${agent.role})`,
      agent.model ? `model: ${agent.model.name} = ${agent.model.provider}:${agent.model.model}` : null,
      agent.mcp_servers.length ? `tools: ${agent.mcp_servers.map((s) => s.name + (s.tools ? ` [${s.tools.join(', ')}]` : '')).join('; ')}` : null,
      workflow.entries.includes(agent.name) ? 'entry: takes the run\'s input' : null,
      workflow.exit === agent.name ? 'exit: its output is the run\'s' : null,
    ].filter(Boolean).join('\n');
    return svg('g', { class: classes.join(' '), 'data-agent': agent.name, transform: `translate(${x} ${y})` },
      svg('title', {}, document.createTextNode(title)),
      svg('rect', { width: NODE_W, height: NODE_H, rx: 6 }),
      svg('text', { x: 10, y: 19, 'font-weight': 600 }, document.createTextNode(clip(agent.name, 22))),
      svg('text', { x: 10, y: 36, class: 'sub' }, document.createTextNode(clip(sub, 26))));
  });
  box.replaceChildren(svg('svg', {
    width, height, viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': `graph of ${workflow.name}`,
  }, defs, ...edges, ...nodes));
  paintGraph();
}

/** Marks each agent of the viewed run's workflow with its step's status. */
function paintGraph() {
  const run = state.viewing;
  for (const node of document.querySelectorAll('#graph g.node')) {
    for (const c of [...node.classList]) if (c.startsWith('s-')) node.classList.remove(c);
    if (!run || run.workflow !== state.selected) continue;
    let status = null;
    for (const step of run.fold.steps.values()) if (step.agent === node.dataset.agent) status = step.status;
    if (status) node.classList.add(`s-${status}`);
  }
}

function clip(text, n) { return text.length > n ? text.slice(0, n - 1) + '…' : text; }

// --- Running --------------------------------------------------------------------------------

/** The request body the form describes, or throws what is wrong with it. */
function requestBody() {
  const raw = $('#input').value;
  let input = raw;
  if ($('#input-json').checked) {
    try { input = JSON.parse(raw); } catch (e) { throw new Error(`the input is not JSON: ${e.message}`); }
    if (!input || typeof input !== 'object' || Array.isArray(input)) throw new Error('a JSON input must be an object');
  } else if (!raw.trim()) {
    throw new Error('write an input first');
  }
  const body = { workflow: state.selected, input, stream: true };
  const budget = {};
  for (const field of ['wall_time_ms', 'model_calls', 'tool_calls', 'input_tokens', 'output_tokens']) {
    const value = $(`#budget-${field}`).value.trim();
    if (value !== '') budget[field] = Number(value);
  }
  if (Object.keys(budget).length) body.budget = budget;
  return body;
}

async function run(event) {
  event.preventDefault();
  if (state.controller) return;
  $('#form-error').textContent = '';
  let body;
  try { body = requestBody(); } catch (e) { $('#form-error').textContent = e.message; return; }
  const record = {
    key: `local-${Date.now()}-${state.runs.length}`, id: null, workflow: body.workflow,
    input: typeof body.input === 'string' ? body.input : JSON.stringify(body.input),
    inputIsJson: typeof body.input !== 'string',
    status: 'running', error: null, started: new Date(), events: [], fold: newFold(),
  };
  state.runs.unshift(record);
  state.viewing = record;
  const controller = new AbortController();
  state.controller = controller;
  setRunning(true);
  renderHistory();
  scheduleRender();
  try {
    const response = await fetch('/v1/run', {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify(body),
      signal: controller.signal,
    });
    const type = response.headers.get('content-type') || '';
    if (type.startsWith('text/event-stream')) {
      for await (const message of events(response)) {
        if (message.data && typeof message.data === 'object') apply(record, message.data);
        scheduleRender();
      }
      if (!response.ok) {
        // Refused before it started, told as a stream of one run.finished.
        record.status = 'refused';
        record.error = `${response.status}: ${record.error || response.statusText}`;
      } else if (record.status === 'running') {
        record.status = 'failed';
        record.error = 'the stream ended without run.finished';
      }
    } else if (!response.ok) {
      record.status = 'refused';
      record.error = await errorOf(response);
    } else {
      record.status = 'failed';
      record.error = `expected an event stream, got ${type || 'no content type'}`;
    }
  } catch (e) {
    if (e.name === 'AbortError') {
      record.status = 'cancelled';
      record.error = 'cancelled from this page (the request was aborted, which cancels the run)';
      for (const step of record.fold.steps.values()) if (step.status === 'running') step.status = 'cancelled';
    } else {
      record.status = 'failed';
      record.error = String(e.message || e);
    }
  } finally {
    state.controller = null;
    setRunning(false);
    renderHistory();
    scheduleRender();
  }
}

function setRunning(running) {
  $('#run-button').disabled = running;
  $('#cancel-button').disabled = !running;
}

/** Server-sent events from a fetch response's body, as an EventSource parses them. */
async function* events(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, '\n');
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const message = parseEvent(block);
      if (message) yield message;
    }
  }
}

function parseEvent(block) {
  let name = 'message', id = null;
  const data = [];
  for (const line of block.split('\n')) {
    if (!line || line.startsWith(':')) continue; // comments: the heartbeat
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') name = value;
    else if (field === 'id') id = value;
    else if (field === 'data') data.push(value);
  }
  if (!data.length) return null;
  let parsed = null;
  try { parsed = JSON.parse(data.join('\n')); } catch (_) { parsed = data.join('\n'); }
  return { event: name, id, data: parsed };
}

// --- The fold: events into the step tree -----------------------------------------------------

function newFold() {
  return { steps: new Map(), output: undefined, usage: null, duration_ms: null };
}

function apply(record, e) {
  record.events.push(e);
  const fold = record.fold;
  const step = e.step_id ? fold.steps.get(e.step_id) : null;
  switch (e.type) {
    case 'run.started':
      record.id = e.run_id;
      record.workflow = e.workflow;
      break;
    case 'agent.started':
      fold.steps.set(e.step_id, {
        id: e.step_id, parent: e.parent_step_id || null, agent: e.agent, role: e.role, model: e.model,
        branch: e.branch, status: 'running', output: '', tools: [], decisions: [], calls: [],
        usage: null, duration_ms: null, error: null, retracted: null,
      });
      break;
    case 'message.delta':
      if (step && typeof step.output === 'string') step.output += e.delta;
      break;
    case 'message.retracted':
      if (step) { step.output = ''; step.retracted = e.reason; }
      break;
    case 'model.call':
      if (step) step.calls.push(e);
      break;
    case 'tool.call':
      if (step) step.tools.push({ id: e.id, name: e.name, server: e.server, arguments: e.arguments });
      break;
    case 'tool.result':
      if (step) {
        const call = [...step.tools].reverse().find((c) => c.id === e.id && c.result === undefined && c.error === undefined);
        if (call) Object.assign(call, { result: e.result, error: e.error, duration_ms: e.duration_ms });
      }
      break;
    case 'agent.decided':
      if (step) step.decisions.push(e.decision);
      break;
    case 'agent.finished':
      if (step) {
        Object.assign(step, {
          status: e.status, output: e.output, usage: e.usage, duration_ms: e.duration_ms, error: e.error || null,
          finish_reason: e.finish_reason, decisions: e.decisions || step.decisions, tools: e.tool_calls || step.tools,
          tools_offered: e.tools_offered,
        });
      }
      break;
    case 'run.finished':
      record.status = e.status;
      record.error = e.error || null;
      fold.output = e.output;
      fold.usage = e.usage;
      fold.duration_ms = e.duration_ms;
      break;
    default:
      break; // a newer event type: kept in the raw list
  }
}

// --- Rendering ------------------------------------------------------------------------------

let renderPending = false;
function scheduleRender() {
  if (renderPending) return;
  renderPending = true;
  requestAnimationFrame(() => { renderPending = false; renderRun(); paintGraph(); });
}

function badge(status) { return el('span', { class: `badge ${status}`, text: status }); }

function usageText(u) {
  if (!u) return '';
  return `${u.input_tokens}→${u.output_tokens} tokens${u.estimated ? ' (estimated)' : ''} · ${u.model_calls} model call${u.model_calls === 1 ? '' : 's'} · ${u.tool_calls} tool call${u.tool_calls === 1 ? '' : 's'}`;
}

function show(value) {
  if (value === undefined || value === null) return '';
  return typeof value === 'string' ? value : JSON.stringify(value, null, 2);
}

function renderRun() {
  const view = $('#run-view');
  const run = state.viewing;
  if (!run) { view.replaceChildren(el('p', { class: 'hint', text: 'Run a workflow to see its steps here.' })); return; }
  const head = el('div', { class: 'run-head', id: 'run-status', 'data-status': run.status },
    badge(run.status), el('b', { text: run.workflow }),
    run.id ? el('code', { text: run.id }) : el('span', { class: 'meta', text: 'starting…' }),
    el('span', { class: 'meta', text: usageText(run.fold.usage) }),
    run.fold.duration_ms !== null ? el('span', { class: 'meta', text: `${run.fold.duration_ms} ms` }) : null);
  const children = new Map();
  const roots = [];
  for (const step of run.fold.steps.values()) {
    if (step.parent && run.fold.steps.has(step.parent)) {
      if (!children.has(step.parent)) children.set(step.parent, []);
      children.get(step.parent).push(step);
    } else {
      roots.push(step);
    }
  }
  const tree = el('ul', { class: 'tree', id: 'step-tree' }, roots.map((s) => renderStep(s, children)));
  const final = run.fold.output !== undefined || run.error
    ? el('div', { class: 'final' },
      run.error ? el('p', { class: 'error', id: 'run-error', text: run.error }) : null,
      run.fold.output !== undefined ? [el('b', { text: 'Output' }), el('div', { class: 'output', id: 'run-output', text: show(run.fold.output) })] : null)
    : null;
  // The raw events are written out only while their list is open (a long run has thousands).
  const pre = el('pre');
  const fill = () => { pre.textContent = run.events.map((e) => JSON.stringify(e)).join('\n'); };
  const raw = el('details', { class: 'events', ontoggle: () => { if (raw.open) fill(); } },
    el('summary', { text: `${run.events.length} events` }), pre);
  if (view.querySelector('details.events')?.open) { raw.open = true; fill(); }
  view.replaceChildren(head, tree, final, raw);
}

function renderStep(step, children) {
  const head = el('div', { class: 'step-head' }, badge(step.status), el('b', { text: step.agent }),
    el('span', { class: 'meta', text: [step.role, step.model, step.branch ? `branch ${step.branch}` : null].filter(Boolean).join(' · ') }),
    el('span', { class: 'meta', text: usageText(step.usage) }),
    step.duration_ms !== null ? el('span', { class: 'meta', text: `${step.duration_ms} ms` }) : null);
  const decisions = step.decisions.map((d) => el('div', { class: 'decision', text: decisionText(d) }));
  const tools = step.tools.map((c) => el('div', { class: 'tool' },
    `${c.name}(${clip(show(c.arguments).replace(/\s+/g, ' '), 120)})`,
    c.result !== undefined && c.result !== null ? [el('span', { class: 'arrow', text: ' → ' }), clip(c.result, 200)] : null,
    c.error ? el('span', { class: 'error', text: ` ✗ ${c.error}` }) : null,
    c.duration_ms !== undefined ? el('span', { class: 'meta', text: ` ${c.duration_ms} ms` }) : null));
  const offered = step.tools_offered || [];
  const unused = offered.length && !step.tools.length && step.status !== 'running'
    ? el('div', { class: 'meta', text: `answered without calling any of the tools offered: ${offered.join(', ')}` })
    : null;
  const output = show(step.output);
  const kids = children.get(step.id) || [];
  return el('li', { class: `step ${step.status}`, 'data-agent': step.agent, 'data-status': step.status, 'data-step': step.id },
    head, decisions, tools, unused,
    step.retracted && !output ? el('div', { class: 'meta', text: `answer withdrawn: ${step.retracted}` }) : null,
    output ? el('div', { class: 'output', text: output }) : null,
    step.error ? el('div', { class: 'error', text: step.error }) : null,
    kids.length ? el('ul', {}, kids.map((k) => renderStep(k, children))) : null);
}

function decisionText(d) {
  switch (d.kind) {
    case 'route': return `route → ${d.categories.join(', ') || '(none)'} by ${d.by}${d.confidence !== undefined ? ` (${d.confidence})` : ''}`;
    case 'tally': return `${d.strategy}: ${d.outcome}${d.disagreements ? ` · disagreements: ${d.disagreements.join('; ')}` : ''}`;
    case 'plan': return `${d.replanned ? 'new plan' : 'plan'}: ${d.steps.map((s, i) => `${i + 1}. ${s.description}${s.worker ? ` (${s.worker})` : ''}`).join('  ')}`;
    case 'round': return `round ${d.round}: ${d.finished ? 'answers' : `${d.worker || '?'} ← ${d.task || ''}`}`;
    default: return JSON.stringify(d);
  }
}

function renderHistory() {
  const list = $('#history');
  if (!state.runs.length) { list.replaceChildren(el('li', { class: 'hint', text: 'None yet.' })); return; }
  list.replaceChildren(...state.runs.map((run) => el('li', {
    class: run === state.viewing ? 'viewing' : '',
    'data-status': run.status,
    onclick: () => {
      state.viewing = run;
      if (run.workflow !== state.selected) select(run.workflow);
      if (!state.controller) { // the form shows the run's input, to run it again
        $('#input').value = run.input;
        $('#input-json').checked = run.inputIsJson;
      }
      renderHistory();
      scheduleRender();
    },
  }, badge(run.status), ' ', el('b', { text: run.workflow }), ' ',
  el('span', { text: clip(run.input, 40) }), el('br'),
  el('code', { text: `${run.started.toLocaleTimeString()}${run.id ? ' · ' + run.id.slice(0, 16) : ''}` }))));
}

// --- Start ----------------------------------------------------------------------------------

$('#run-form').addEventListener('submit', run);
$('#cancel-button').addEventListener('click', () => state.controller?.abort());
renderHistory();
renderRun();
loadWorkflows();
