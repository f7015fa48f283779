// The dev console in headless Chromium (Debian's) driven by Playwright (playwright-core from
// npm), against a real orchestrate on the scripted model (.ci/ui-test.sh starts both):
// the workflows listed and drawn, a routed run followed to its completed step tree (route,
// tool call, usage), a run with a lowered budget, a refused run, and a slow run cancelled from
// the page (the server counts it cancelled). Saves a screenshot. Exits non-zero on any failure,
// a console error or a page error included.
import { chromium } from 'playwright-core';
import assert from 'node:assert/strict';

const base = process.env.ORCHESTRATE_URL;
const model = process.env.MODEL_URL;
const screenshot = process.env.SCREENSHOT || '.cache/ui-screenshot.png';
const TIMEOUT = 20_000;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--no-first-run'],
});
const problems = [];
let passed = 0, failed = 0;
try {
  const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
  page.setDefaultTimeout(TIMEOUT);
  // (The refused run's 400 is logged by the browser as a failed load: expected, once.)
  let expected400 = 0;
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    if (/Failed to load resource: .* 400 \(Bad Request\)/.test(m.text()) && expected400-- > 0) return;
    problems.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));

  const step = async (name, body) => {
    const started = Date.now();
    try {
      await body();
      passed++;
      console.log(`ok - ${name} (${Date.now() - started} ms)`);
    } catch (e) {
      failed++;
      console.log(`not ok - ${name}: ${e.message}`);
      throw e;
    }
  };
  const setLatency = async (ms) => {
    const r = await fetch(`${model}/admin/latency`, { method: 'POST', body: String(ms) });
    assert.equal(r.status, 200);
  };
  const cancelledRuns = async () => {
    const text = await (await fetch(`${base}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith('aixgo_orchestrate_runs_total{') &&
      l.includes('status="cancelled"') && l.includes('workflow="default"'));
    return line ? Number(line.trim().split(/\s+/).pop()) : 0;
  };
  const runWith = async (workflow, input, budget = {}) => {
    await page.click(`#workflows li[data-workflow="${workflow}"]`);
    await page.fill('#input', input);
    for (const field of ['wall_time_ms', 'model_calls', 'tool_calls', 'input_tokens', 'output_tokens']) {
      await page.fill(`#budget-${field}`, budget[field] === undefined ? '' : String(budget[field]));
    }
    await page.click('#run-button');
  };

  await step('the page loads its own files and lists the workflows', async () => {
    const response = await page.goto(`${base}/ui`);
    assert.equal(response.status(), 200);
    await page.waitForSelector('#workflows li[data-workflow]');
    const names = await page.$$eval('#workflows li[data-workflow]', (l) => l.map((e) => e.dataset.workflow));
    assert.deepEqual(names.sort(), ['default', 'routed', 'team']);
  });

  await step('each workflow is drawn as its graph', async () => {
    await page.click('#workflows li[data-workflow="routed"]');
    const agents = await page.$$eval('#graph g.node', (n) => n.map((e) => e.dataset.agent));
    assert.deepEqual(agents.sort(), ['assistant', 'chatter', 'router']);
    const labels = await page.$$eval('#graph text.edge-label', (n) => n.map((e) => e.textContent));
    assert.deepEqual(labels.sort(), ['chat', 'tools']);
    assert.equal(await page.$$eval('#graph path.edge', (n) => n.length), 2);
    await page.click('#workflows li[data-workflow="team"]');
    assert.equal(await page.$$eval('#graph g.node.worker', (n) => n.length), 1);
    assert.equal(await page.$$eval('#graph path.edge.delegates', (n) => n.length), 1);
  });

  await step('a routed run streams into a completed step tree', async () => {
    await runWith('routed', 'please echo this');
    await page.waitForSelector('#run-status[data-status="completed"]');
    const steps = await page.$$eval('#step-tree li.step', (l) => l.map((e) => [e.dataset.agent, e.dataset.status]));
    assert.deepEqual(steps, [['router', 'completed'], ['assistant', 'completed']]);
    const router = await page.textContent('#step-tree li[data-agent="router"]');
    assert.match(router, /route → tools by keywords/);
    const assistant = await page.textContent('#step-tree li[data-agent="assistant"]');
    assert.match(assistant, /echo\(/);
    assert.match(assistant, /2 model calls · 1 tool call/);
    assert.equal((await page.textContent('#run-output')).trim(), 'done');
    assert.equal(await page.$$eval('#graph g.node.s-completed', (n) => n.length), 2);
  });

  await step('a lowered budget is sent and its end shown', async () => {
    await runWith('default', 'say something', { model_calls: 1 });
    await page.waitForSelector('#run-status[data-status="budget_exhausted"]');
  });

  await step('a refused run shows the error body', async () => {
    expected400 = 1;
    await runWith('default', 'x', { wall_time_ms: 999999999 });
    await page.waitForSelector('#run-status[data-status="refused"]');
    // (The JSON error on its own, or a stream of one run.finished: the status and the reason.)
    assert.match(await page.textContent('#run-error'), /^400\b.*: budget.wall_time_ms is above/);
  });

  await step('a slow run is cancelled from the page, and the server cancels it', async () => {
    const before = await cancelledRuns();
    await setLatency(30_000);
    try {
      await runWith('default', 'take your time');
      await page.waitForSelector('#step-tree li[data-agent="solo"][data-status="running"]');
      assert.equal(await page.isDisabled('#run-button'), true);
      await page.click('#cancel-button');
      await page.waitForSelector('#run-status[data-status="cancelled"]');
      const deadline = Date.now() + TIMEOUT;
      while ((await cancelledRuns()) !== before + 1) {
        assert.ok(Date.now() < deadline, 'the server never counted the run cancelled');
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.equal(await page.isDisabled('#run-button'), false);
    } finally {
      await setLatency(2);
    }
  });

  await step('past runs list this page\'s runs, and one can be shown again', async () => {
    const statuses = await page.$$eval('#history li', (l) => l.map((e) => e.dataset.status));
    assert.deepEqual(statuses, ['cancelled', 'refused', 'budget_exhausted', 'completed']);
    await page.click('#history li[data-status="completed"]');
    await page.waitForSelector('#run-status[data-status="completed"]');
    await page.screenshot({ path: screenshot, fullPage: true });
    await page.click('details.events summary');
    // The events are written when the `toggle` event fires, a task after the click: wait.
    await page.waitForFunction(
      () => (document.querySelector('details.events pre')?.textContent ?? '').length > 0,
    );
    const raw = await page.textContent('details.events pre');
    assert.match(raw, /"type":"run.started"/);
    assert.match(raw, /"type":"run.finished"/);
  });

  assert.deepEqual(problems, [], 'no console or page errors');
} finally {
  await browser.close();
  console.log(`${passed} passed, ${failed} failed`);
}
