// Browser test of the ticketd web UI: two shoppers in two browser contexts on the live seat map.
//
//   TICKETD_URL=http://127.0.0.1:7403 node tests/browser/ticketing_ui.mjs
//
// A holds two seats -> B sees them turn "held" without a reload (SSE); A pays -> B sees "sold" and
// A gets an order id; the flash-sale event's waiting room shows a place in line, admits the
// shopper, and a hold from there carries the queue ticket. SCREENSHOT=<file.png> saves B's map
// (1280x800) after the sale. Uses Debian's chromium (CHROMIUM overrides /usr/bin/chromium).
// Exits 0 on success, 1 with a message on the first failure; gives up after TIMEOUT_MS (60 s).

import {existsSync} from 'node:fs';

const BASE = (process.env.TICKETD_URL || '').replace(/\/+$/, '');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const SCREENSHOT = process.env.SCREENSHOT || '';
const TIMEOUT_MS = Number(process.env.TIMEOUT_MS || 60000);
const LIVE_MS = 6000;  // how long a change may take to reach the other shopper's map

const started = Date.now();
const elapsed = () => `${((Date.now() - started) / 1000).toFixed(1)} s`;
const log = (msg) => console.log(`[${elapsed()}] ${msg}`);

class TestFailure extends Error {}
function check(cond, msg) {
  if (!cond) throw new TestFailure(msg);
}

let browser = null;
const pages = [];  // [name, page] for diagnostics
const pageErrors = [];

async function diagnostics() {
  for (const [name, page] of pages) {
    try {
      const status = await page.$eval('#status', (el) => el.textContent).catch(() => '(none)');
      console.error(`  page ${name}: ${page.url()}  #status: ${JSON.stringify(status)}`);
    } catch {
      // page gone
    }
  }
  for (const e of pageErrors) console.error(`  ${e}`);
}

async function bail(msg, code = 1) {
  console.error(`FAIL ticketing_ui after ${elapsed()}: ${msg}`);
  await diagnostics();
  if (browser) await browser.close().catch(() => {});
  process.exit(code);
}

// ---- the API, for setup and for a realistic map (other shoppers) ------------------------------

async function api(method, path, body, headers = {}) {
  const res = await fetch(BASE + path, {
    method,
    headers: {'Content-Type': 'application/json', ...headers},
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let data = null;
  try {
    data = JSON.parse(text);
  } catch {
    data = text;
  }
  return {status: res.status, data};
}

async function apiOk(method, path, body, headers, want) {
  const r = await api(method, path, body, headers);
  check(
      r.status === want,
      `${method} ${path} -> ${r.status} ${JSON.stringify(r.data)} (want ${want})`);
  return r.data;
}

// ---- page helpers -----------------------------------------------------------------------------

async function openMap(context, name, eventId) {
  const page = await context.newPage();
  pages.push([name, page]);
  page.on('pageerror', (e) => pageErrors.push(`${name}: uncaught ${e.message}`));
  page.on('console', (m) => {
    // Chrome logs every non-2xx fetch as "Failed to load resource": expected for API errors.
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) {
      pageErrors.push(`${name}: console.error ${m.text()}`);
    }
  });
  const res = await page.goto(`${BASE}/events/${eventId}`);
  check(res && res.ok(), `${name}: GET /events/${eventId} -> ${res && res.status()}`);
  await page.waitForSelector('#seatmap .seat', {timeout: 10000});
  await page.waitForSelector('#live[data-live="open"]', {timeout: 10000});
  return page;
}

const seatStates = (page, ids) => page.$$eval(
    '#seatmap .seat',
    (els, want) => Object.fromEntries(els.filter((el) => want.includes(Number(el.dataset.seatId)))
                                          .map((el) => [el.dataset.seatId, {
                                                 state: el.dataset.state,
                                                 mine: el.classList.contains('mine')
                                               }])),
    ids);

async function waitForStates(page, ids, state, what) {
  try {
    await page.waitForFunction(
        ([want, s]) => want.every((id) => {
          const el = document.querySelector(`#seatmap .seat[data-seat-id="${id}"]`);
          return el && el.dataset.state === s;
        }),
        [ids, state], {timeout: LIVE_MS, polling: 50});
  } catch {
    throw new TestFailure(
        `${what}: seats ${ids} not all "${state}" within ${LIVE_MS} ms: ` +
        JSON.stringify(await seatStates(page, ids)));
  }
}

// Seats available on `page`, of one tier, nearest the centre of the map first.
async function availableSeats(page, tier) {
  return page.$$eval(
      '#seatmap .seat[data-state="available"]',
      (els, t) =>
          els.filter((el) => !t || el.dataset.tier === t).map((el) => ({
                                                                id: Number(el.dataset.seatId),
                                                                x: Number(el.getAttribute('cx')),
                                                                y: Number(el.getAttribute('cy'))
                                                              })),
      tier);
}

function adjacent(seats, n, skipRows = 0) {
  // Group by row (y), walk rows from the front, take n neighbours from the middle of a row.
  const rows = new Map();
  for (const s of seats) rows.set(s.y, [...(rows.get(s.y) || []), s]);
  const ys = [...rows.keys()].sort((a, b) => a - b).slice(skipRows);
  for (const y of ys) {
    const row = rows.get(y).sort((a, b) => a.x - b.x);
    if (row.length < n) continue;
    const mid = Math.floor((row.length - n) / 2);
    return row.slice(mid, mid + n).map((s) => s.id);
  }
  throw new TestFailure(`no ${n} adjacent available seats`);
}

// ---- the test ---------------------------------------------------------------------------------

async function main() {
  check(BASE, 'TICKETD_URL is not set (e.g. TICKETD_URL=http://127.0.0.1:7403)');
  check(
      existsSync(CHROMIUM),
      `no chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM)`);
  let chromium;
  try {
    ({chromium} = await import('playwright-core'));
  } catch (e) {
    throw new TestFailure(
        `cannot load playwright-core (${e.message}): run \`npm ci\` in ` +
        'tests/browser (./sd test does that)');
  }

  const events = (await apiOk('GET', '/v1/events', undefined, {}, 200)).events;
  check(Array.isArray(events) && events.length >= 2, `GET /v1/events: ${JSON.stringify(events)}`);
  const plain = events.find((e) => !e.waiting_room);
  const flash = events.find((e) => e.waiting_room);
  check(plain && flash, 'want one event without and one with a waiting room');
  const run = Math.random().toString(16).slice(2, 8);

  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox', '--headless=new', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'
    ],
  });
  const newShopper = async (name) => {
    const ctx = await browser.newContext({viewport: {width: 1280, height: 800}});
    await ctx.addInitScript((c) => {
      if (!localStorage.getItem('sd.customer')) localStorage.setItem('sd.customer', c);
    }, `${name}-${run}`);
    return ctx;
  };

  // 1. Two shoppers on the same map.
  const ctxA = await newShopper('alice');
  const ctxB = await newShopper('bob');
  const [a, b] = await Promise.all([openMap(ctxA, 'A', plain.id), openMap(ctxB, 'B', plain.id)]);
  check(
      (await a.inputValue('#customer')) !== (await b.inputValue('#customer')),
      'the two contexts got the same customer id');
  await b.evaluate(() => {
    window.__sdNoReload = true;
  });
  const nSeats = await a.$$eval('#seatmap .seat', (els) => els.length);
  check(nSeats > 10, `the map of event ${plain.id} has ${nSeats} seats`);
  check(await a.$$eval('.stage', (els) => els.length) === 1, 'no stage on the map');
  const legend = await a.$$eval('.legend-tier', (els) => els.map((el) => el.textContent));
  check(legend.length > 0 && legend.every((t) => /\$\d/.test(t)), `legend tiers/prices: ${legend}`);
  const title = await a.$eval('#seatmap .seat', (el) => el.querySelector('title').textContent);
  check(/\$\d/.test(title), `seat title has no price: ${title}`);
  log(`A and B see the map of "${plain.name}" (${nSeats} seats, live)`);

  // 2. A selects two seats and holds them.
  const pick = adjacent(await availableSeats(a, 'floor'), 2, 2);
  for (const id of pick) await a.click(`#seatmap .seat[data-seat-id="${id}"]`);
  check(
      await a.$$eval('#seatmap .seat.selected', (els) => els.length) === 2,
      'A: clicks did not select 2 seats');
  check(await a.isEnabled('#hold'), 'A: #hold disabled with 2 seats selected');
  await a.click('#hold');
  try {
    await a.waitForFunction(
        (n) => document.querySelectorAll('#seatmap .seat.mine').length === n, pick.length,
        {timeout: LIVE_MS});
  } catch {
    throw new TestFailure(`A: the hold did not show (mine seats: ${
        await a.$$eval('#seatmap .seat.mine', (els) => els.length)})`);
  }
  check(
      await a.isVisible('#pay') && await a.isVisible('#cancel'), 'A: no #pay / #cancel after hold');
  const countdown = await a.textContent('#countdown');
  check(/\d/.test(countdown || ''), `A: no hold countdown (${countdown})`);
  log(`A held seats ${pick} (expires in ${countdown})`);

  // 3. B sees them held, live.
  await waitForStates(b, pick, 'held', 'B after A held');
  const bStates = await seatStates(b, pick);
  check(Object.values(bStates).every((s) => !s.mine), 'B: A\'s seats are marked "mine" in B');
  await b.click(`#seatmap .seat[data-seat-id="${pick[0]}"]`, {force: true});
  check(
      await b.$$eval('#seatmap .seat.selected', (els) => els.length) === 0,
      'B could select a held seat');
  log('B sees them held without a reload');

  // 4. A pays; B sees them sold; A gets an order id.
  check(
      (await a.inputValue('#card')).replace(/\s/g, '') === '4242424242424242',
      'A: the card field is not prefilled with the test card');
  await a.click('#pay');
  try {
    await a.waitForFunction(
        () => /o_[0-9a-f]+/.test(document.querySelector('#order')?.textContent || ''), null,
        {timeout: LIVE_MS});
  } catch {
    throw new TestFailure(`A: no order id in #order after paying`);
  }
  const orderText = await a.textContent('#order');
  const orderId = orderText.match(/o_[0-9a-f]+/)[0];
  const order = await apiOk('GET', `/v1/orders/${orderId}`, undefined, {}, 200);
  check(
      order.status === 'confirmed' &&
          JSON.stringify([...order.seats].sort()) === JSON.stringify([...pick].sort()),
      `order ${orderId}: ${JSON.stringify(order)}`);
  await waitForStates(b, pick, 'sold', 'B after A paid');
  await waitForStates(a, pick, 'sold', 'A after paying');
  check(await b.evaluate(() => window.__sdNoReload === true), 'B was reloaded');
  log(`A paid: order ${orderId}; B sees the seats sold`);

  // 5. The waiting room of the flash sale: a place in line, admission, a hold with the ticket.
  const ctxC = await newShopper('carol');
  const c = await ctxC.newPage();
  pages.push(['C', c]);
  c.on('pageerror', (e) => pageErrors.push(`C: uncaught ${e.message}`));
  await c.goto(`${BASE}/queue/${flash.id}`);
  await c.waitForSelector('#queue[data-state]', {timeout: 10000});
  const q =
      await c.$eval('#queue', (el) => ({
                                state: el.dataset.state,
                                ticket: el.dataset.ticket,
                                position: document.querySelector('#queue-position').textContent,
                                shown: document.querySelector('#queue-state').textContent
                              }));
  check(
      ['waiting', 'active'].includes(q.state) && q.shown === q.state && q.position.trim() &&
          q.ticket,
      `waiting room: ${JSON.stringify(q)}`);
  log(`waiting room of "${flash.name}": state ${q.state}, ${q.position}`);
  await c.waitForURL(`${BASE}/events/${flash.id}`, {timeout: 15000});
  await c.waitForSelector('#seatmap .seat', {timeout: 10000});
  await c.waitForSelector('#queue-banner[data-kind="ok"]', {timeout: 5000});
  const [cs] = adjacent(await availableSeats(c), 1);
  await c.click(`#seatmap .seat[data-seat-id="${cs}"]`);
  await c.click('#hold');
  try {
    await c.waitForSelector(`#seatmap .seat.mine[data-seat-id="${cs}"]`, {timeout: LIVE_MS});
  } catch {
    throw new TestFailure(`C: hold on the flash sale failed: ${await c.textContent('#status')}`);
  }
  await c.click('#cancel');
  await waitForStates(c, [cs], 'available', 'C after cancelling');
  log('admitted from the waiting room; a hold with the queue ticket worked and was cancelled');

  // 6. Other shoppers (through the API) for a realistic map; B's map follows; B picks three seats.
  const others = [];
  const floor = adjacent(await availableSeats(b, 'floor'), 8, 5);
  const lower = adjacent(await availableSeats(b, 'lower'), 10, 1);
  const lower2 = adjacent(await availableSeats(b, 'lower'), 6, 4);
  const balcony = adjacent(await availableSeats(b, 'balcony'), 5, 0);
  for (const [who, seats, paid] of [
           ['dave', floor, true], ['erin', lower, true], ['frank', lower2, false],
           ['gina', balcony, false]]) {
    const customer = `${who}-${run}`;
    const hold = await apiOk(
        'POST', `/v1/events/${plain.id}/holds`, {customer, seats},
        {'Idempotency-Key': `${customer}-hold`}, 201);
    if (paid) {
      await apiOk(
          'POST', `/v1/holds/${hold.hold_id}/pay`, {customer, card: '4242424242424242'},
          {'Idempotency-Key': `${customer}-pay`}, 201);
    }
    others.push([seats, paid ? 'sold' : 'held']);
  }
  for (const [seats, state] of others) await waitForStates(b, seats, state, `B after API ${state}`);
  const mine = adjacent(await availableSeats(b, 'floor'), 3, 1);
  await b.click(`#seatmap .seat[data-seat-id="${mine[0]}"]`);
  await b.click(`#seatmap .seat[data-seat-id="${mine[1]}"]`);
  await b.focus(`#seatmap .seat[data-seat-id="${mine[2]}"]`);  // the keyboard works too
  await b.keyboard.press('Enter');
  check(await b.$$eval('#selection li', (els) => els.length) === 3, 'B: selection list is not 3');
  check(
      await b.$$eval('#seatmap .seat.selected', (els) => els.length) === 3,
      'B: 3 seats are not marked selected (click, click, Enter)');
  const tiers = (await apiOk('GET', `/v1/events/${plain.id}`, undefined, {}, 200)).tiers;
  const floorCents = tiers.find((t) => t.name === 'floor').price_cents;
  const want = new Intl.NumberFormat('en-US', {style: 'currency', currency: 'USD'})
                   .format((3 * floorCents) / 100);
  const total = await b.textContent('#total');
  check(total === want, `B: total ${total}, want ${want}`);
  log('B follows other shoppers\' holds and sales; B selected 3 seats (2 clicks, 1 Enter)');

  if (SCREENSHOT) {
    await b.mouse.move(0, 0);
    await b.screenshot({path: SCREENSHOT});
    log(`screenshot: ${SCREENSHOT}`);
  }
  check(pageErrors.length === 0, `errors in the pages:\n  ${pageErrors.join('\n  ')}`);
  await browser.close();
  browser = null;
  console.log(`PASS ticketing_ui (${elapsed()})`);
}

const timer = setTimeout(() => bail(`timed out after ${TIMEOUT_MS} ms`), TIMEOUT_MS);
main().then(() => {
  clearTimeout(timer);
  process.exit(0);
}, (e) => bail(e instanceof TestFailure ? e.message : (e && e.stack) || String(e)));
