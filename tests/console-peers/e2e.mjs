// The web console end to end, in headless Chromium (playwright-core with
// the system's /usr/bin/chromium), against a real gateway and a real
// OpenID provider. Run by crates/console/tests/browser.rs, which starts
// both and passes:
//   GATEWAY (url), AGENT_KEY (the agent's API key), STEP_UP_SECS (the
//   step-up age), SHOTS (a directory for screenshots; optional).
// Prints one line per step; exits 1 with the reason on the first failure.
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const GATEWAY = process.env.GATEWAY;
const AGENT_KEY = process.env.AGENT_KEY;
const STEP_UP_SECS = Number(process.env.STEP_UP_SECS || '3');
const SHOTS = process.env.SHOTS || '';

function step(text) { console.log(`step: ${text}`); }
function check(cond, text) { if (!cond) { throw new Error(`check failed: ${text}`); } }

async function submit(resource, justification) {
  const response = await fetch(`${GATEWAY}/v1/actions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${AGENT_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      kind: 'shell.exec', resource, justification,
      payload: { argv: ['systemctl', 'restart', resource.replace(/^prod-|^vault-/, '')] },
      labels: resource.startsWith('vault') ? ['secrets'] : [],
      context: { ticket: 'OPS-1234', confidence: 0.92 },
    }),
  });
  check(response.status === 201, `submit ${resource}: HTTP ${response.status}`);
  return (await response.json()).id;
}

async function status(id) {
  const response = await fetch(`${GATEWAY}/v1/actions/${id}`, { headers: { authorization: `Bearer ${AGENT_KEY}` } });
  return (await response.json()).status;
}

async function shot(page, name, fullPage = true) {
  if (!SHOTS) return;
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage });
}

/// Signs in at the provider's login form; `page` is on (or heading to) it.
async function providerLogin(page, user) {
  await page.waitForSelector('input[name="login"]', { timeout: 15000 });
  await page.fill('input[name="login"]', user);
  await page.fill('input[name="password"]', 'any password');
  await Promise.all([page.waitForURL(`${GATEWAY}/console/**`, { timeout: 15000 }), page.click('button[type="submit"]')]);
}

async function consoleLogin(context, user) {
  const page = await context.newPage();
  await page.goto(`${GATEWAY}/console/`);
  check(page.url().startsWith(`${GATEWAY}/console/login`), `not signed in goes to the login page (${page.url()})`);
  await page.click('text=Log in with your organisation');
  await providerLogin(page, user);
  return page;
}

const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'countersign-chromium-'));
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
         '--disable-component-update', '--disable-sync', '--disable-quic'],
});
let failed = false;
try {
  const desktop = { viewport: { width: 1280, height: 800 } };
  const phone = { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 };

  // ---- logging in ---------------------------------------------------------
  step('a pending request exists before anyone looks');
  const prodId = await submit('prod-web', 'restart web after the 2.14 deploy');
  const alice = await browser.newContext(desktop);
  const loginPage = await alice.newPage();
  await loginPage.goto(`${GATEWAY}/console/login`);
  await shot(loginPage, 'login');
  await loginPage.close();
  step('alice logs in through the identity provider');
  const page = await consoleLogin(alice, 'alice');
  const loggedInAt = Date.now();
  check(page.url() === `${GATEWAY}/console/`, `back on the queue after login (${page.url()})`);
  check((await page.textContent('.who')).includes('Alice Approver'), 'the header names the person');
  const cookies = await alice.cookies(GATEWAY);
  const session = cookies.find((c) => c.name === '__Host-cs_session');
  check(session && session.httpOnly && session.secure && session.sameSite === 'Lax', `session cookie flags: ${JSON.stringify(session)}`);

  // ---- seeing a pending request, live ----------------------------------------
  step('the queue shows the pending request');
  check(await page.locator(`a[href="/console/requests/${prodId}"]`).count() === 1, 'the prod request is in the queue');
  step('a new request appears without a reload (server-sent events)');
  const liveId = await submit('prod-db', 'rotate the replica');
  await page.waitForSelector(`a[href="/console/requests/${liveId}"]`, { timeout: 10000 });
  await shot(page, 'queue');

  // ---- approving it -----------------------------------------------------------
  step('alice opens the request and approves it with a comment');
  await page.click(`a[href="/console/requests/${prodId}"]`);
  await page.waitForSelector('h2#review-h');
  await shot(page, 'request');
  await page.fill('#vote-comment', 'looks right, go');
  await Promise.all([page.waitForURL(/done=approved/), page.click('button:has-text("Approve")')]);
  check((await page.textContent('.notice')).includes('Your approval is recorded'), 'the approval is confirmed');
  check(await status(prodId) === 'approved', 'the gateway has it approved');
  check((await page.textContent('#votes-h + ul')).includes('looks right, go'), 'the comment shows with the vote');

  // ---- self-approval refused --------------------------------------------------
  step('bob, who owns the agent, cannot approve: the button says why');
  const bob = await browser.newContext(desktop);
  const bobPage = await consoleLogin(bob, 'bob');
  await bobPage.goto(`${GATEWAY}/console/requests/${liveId}`);
  const approveButton = bobPage.locator('button:has-text("Approve")');
  check(await approveButton.isDisabled(), 'the Approve button is disabled for the owner');
  const why = await bobPage.textContent('#why-approve');
  check(why.includes('you own the agent that asked for this'), `the reason is shown: ${why}`);
  await shot(bobPage, 'self-approval');
  step('a forged approval from bob is refused by the gateway too');
  const csrf = await bobPage.getAttribute('input[name="_csrf"]', 'value');
  await bobPage.evaluate(async ({ id, csrf }) => {
    const form = document.createElement('form');
    form.method = 'post';
    form.action = `/console/requests/${id}/approve`;
    const field = document.createElement('input');
    field.type = 'hidden'; field.name = '_csrf'; field.value = csrf;
    form.appendChild(field);
    document.body.appendChild(form);
    form.submit();
  }, { id: liveId, csrf });
  await bobPage.waitForURL(/refused=self_approval/);
  check((await bobPage.textContent('.notice')).includes('You cannot decide this'), 'the refusal is explained');
  check(await status(liveId) === 'pending', 'still pending after the forged approval');
  step('a form without the CSRF token is refused');
  await bobPage.evaluate(async (id) => {
    const form = document.createElement('form');
    form.method = 'post'; form.action = `/console/requests/${id}/deny`;
    document.body.appendChild(form); form.submit();
  }, liveId);
  await bobPage.waitForURL(/refused=csrf/);
  check(await status(liveId) === 'pending', 'no vote without the CSRF token');

  // ---- step-up forcing a fresh login ------------------------------------------
  step('a step-up request needs a fresh login');
  const vaultId = await submit('vault-keys', 'rotate the signing key');
  const wait = loggedInAt + STEP_UP_SECS * 1000 + 1500 - Date.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  await page.goto(`${GATEWAY}/console/requests/${vaultId}`);
  const stepUp = page.locator('button:has-text("Log in again and approve")');
  check(await stepUp.count() === 1, 'the button says a fresh login comes first');
  await stepUp.click();
  await page.waitForURL((url) => !url.href.startsWith(GATEWAY), { timeout: 15000 });
  check(await page.locator('input[name="login"]').count() === 1, `the provider asks for the login again (${page.url()})`);
  await providerLogin(page, 'alice');
  check(page.url().startsWith(`${GATEWAY}/console/requests/${vaultId}`), `back on the request (${page.url()})`);
  await Promise.all([page.waitForURL(/done=approved/), page.click('button:has-text("Approve")')]);
  check(await status(vaultId) === 'approved', 'the fresh login approved the step-up request');

  // ---- the other pages, for an auditor/admin ----------------------------------
  step('carol (auditor, admin) sees history, audit, policies and admin');
  const carol = await browser.newContext(desktop);
  const carolPage = await consoleLogin(carol, 'carol');
  await carolPage.goto(`${GATEWAY}/console/history?status=approved`);
  check((await carolPage.textContent('.count')).startsWith('2 found'), `history finds both approvals: ${await carolPage.textContent('.count')}`);
  await carolPage.goto(`${GATEWAY}/console/history`);
  await shot(carolPage, 'history');
  const csv = await carolPage.evaluate(async () => (await fetch('/console/history.csv?status=approved')).text());
  check(csv.split('\r\n')[0].startsWith('id,created_at,status'), 'the CSV has a header');
  check(csv.includes(prodId) && csv.includes(vaultId), 'the CSV holds the approved requests');
  await carolPage.goto(`${GATEWAY}/console/audit`);
  check((await carolPage.textContent('.notice')).includes('Verified'), 'the audit chain verifies');
  await shot(carolPage, 'audit', false);
  await carolPage.goto(`${GATEWAY}/console/policies`);
  await carolPage.fill('#sample', JSON.stringify({
    principal: { kind: 'agent', name: 'deploy-bot', groups: [] },
    action: { kind: 'shell.exec', resource: 'vault-keys', payload: {} },
  }, null, 2));
  await carolPage.click('button:has-text("Decide")');
  await carolPage.waitForSelector('#test-outcome');
  check((await carolPage.textContent('#test-outcome')) === 'pending', 'policy test: vault needs approval');
  await shot(carolPage, 'policies');
  await carolPage.goto(`${GATEWAY}/console/admin`);
  check((await carolPage.textContent('table.health')).includes('OpenID Connect provider'), 'the provider is listed');
  await shot(carolPage, 'admin');

  // ---- phone-sized window -------------------------------------------------------
  step('on a phone-sized window, alice approves from the queue');
  const phoneContext = await browser.newContext(phone);
  const phonePage = await consoleLogin(phoneContext, 'alice');
  await shot(phonePage, 'phone-queue');
  await phonePage.click(`a[href="/console/requests/${liveId}"]`);
  await phonePage.waitForSelector('h2#review-h');
  const width = await phonePage.evaluate(() => document.documentElement.scrollWidth);
  check(width <= 390, `no sideways scrolling on a phone (${width}px)`);
  await phonePage.locator('#decide-h').scrollIntoViewIfNeeded();
  await shot(phonePage, 'phone-request', false);
  await Promise.all([phonePage.waitForURL(/done=approved/), phonePage.click('button:has-text("Approve")')]);
  check(await status(liveId) === 'approved', 'approved from the phone');

  // ---- logging out --------------------------------------------------------------
  step('alice logs out, at the provider too');
  await page.goto(`${GATEWAY}/console/`);
  await page.click('button:has-text("Log out")');
  await page.waitForURL((url) => !url.href.startsWith(GATEWAY), { timeout: 15000 });
  const confirm = page.locator('button:has-text("Yes, sign me out")');
  if (await confirm.count() > 0) { await confirm.click(); }
  await page.waitForURL(`${GATEWAY}/console/login?logged_out=1`, { timeout: 15000 });
  check((await page.textContent('.notice')).includes('logged out'), 'the login page says so');
  await page.goto(`${GATEWAY}/console/`);
  check(page.url().startsWith(`${GATEWAY}/console/login`), 'the session is gone');
  step('after logout, the provider asks for the password again');
  await page.click('text=Log in with your organisation');
  await page.waitForSelector('input[name="login"]', { timeout: 15000 });

  console.log('e2e: all checks passed');
} catch (error) {
  failed = true;
  console.error(`e2e: ${error.stack || error}`);
} finally {
  await browser.close();
  fs.rmSync(userDataDir, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
