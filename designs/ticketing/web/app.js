// The ticketd web UI: the event list ("/"), the live seat map with hold & pay ("/events/{id}") and
// the waiting room ("/queue/{id}"). Plain browser JavaScript, no build step; every request goes to
// ticketd's JSON API (/v1/...), live updates come from its server-sent event streams.
//
// Hooks for tests: each seat is an SVG <circle class="seat"> with data-seat-id and data-state
// (available|held|sold) and the class "mine" for seats of the shopper's own active hold; buttons
// #hold, #pay, #cancel; messages in #status; the confirmed order's id in #order.
'use strict';

(() => {
  const SVG_NS = 'http://www.w3.org/2000/svg';
  const MAX_SEATS = 10;  // per hold, unless the event says (max_seats_per_hold)
  const TIER_COLORS = {floor: '#0f766e', lower: '#7c3aed', balcony: '#db2777'};
  const EXTRA_COLORS = ['#0891b2', '#65a30d', '#c2410c', '#4338ca', '#be123c', '#15803d'];

  // ---- small helpers ------------------------------------------------------------------------

  const $ = (sel, root = document) => root.querySelector(sel);

  // h('div', {class: 'x', onclick: fn}, child, 'text', ...) -> element
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith('on'))
        el.addEventListener(k.slice(2), v);
      else if (k === 'text')
        el.textContent = v;
      else
        el.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children.flat()) {
      if (c === undefined || c === null || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }

  function svg(tag, attrs) {
    const el = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
    return el;
  }

  const money = new Intl.NumberFormat('en-US', {style: 'currency', currency: 'USD'});
  const fmtMoney = (cents) => money.format((Number(cents) || 0) / 100);
  const fmtDate = (ms) => new Date(ms).toLocaleString(undefined, {
    weekday: 'short',
    year: 'numeric',
    month: 'short',
    day: 'numeric',
    hour: '2-digit',
    minute: '2-digit'
  });

  function fmtDuration(ms) {
    const s = Math.max(0, Math.ceil(ms / 1000));
    if (s < 60) return `${s} s`;
    const m = Math.floor(s / 60);
    if (m < 60) return `${m}:${String(s % 60).padStart(2, '0')}`;
    return `${Math.floor(m / 60)} h ${m % 60} min`;
  }

  function fmtEta(ms) {
    const s = Math.ceil(ms / 1000);
    if (s <= 1) return 'any moment now';
    if (s < 60) return `about ${s} seconds`;
    const m = Math.round(s / 60);
    return m === 1 ? 'about a minute' : `about ${m} minutes`;
  }

  // A v4 UUID for Idempotency-Key. crypto.randomUUID needs a secure context (https or localhost);
  // getRandomValues works everywhere.
  function uuid() {
    if (window.crypto && typeof crypto.randomUUID === 'function') return crypto.randomUUID();
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const x = [...b].map((v) => v.toString(16).padStart(2, '0')).join('');
    return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${
        x.slice(20)}`;
  }

  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

  // ---- storage ------------------------------------------------------------------------------

  function store(kind) {
    try {
      const s = kind === 'local' ? window.localStorage : window.sessionStorage;
      s.setItem('sd.probe', '1');
      s.removeItem('sd.probe');
      return s;
    } catch {
      const m = new Map();  // storage disabled: remember for this page only
      return {
        getItem: (k) => (m.has(k) ? m.get(k) : null),
        setItem: (k, v) => m.set(k, String(v)),
        removeItem: (k) => m.delete(k)
      };
    }
  }
  const local = store('local');
  const session = store('session');

  // The shopper's customer id: kept in localStorage, editable in the header.
  function customer() {
    let c = local.getItem('sd.customer');
    if (!c) {
      const b = crypto.getRandomValues(new Uint8Array(3));
      c = 'guest-' + [...b].map((v) => v.toString(16).padStart(2, '0')).join('');
      local.setItem('sd.customer', c);
    }
    return c;
  }

  function setupCustomerField() {
    const input = $('#customer');
    if (!input) return;
    input.value = customer();
    input.addEventListener('change', () => {
      const v = input.value.trim().slice(0, 64);
      if (!v) {
        input.value = customer();
        return;
      }
      input.value = v;
      local.setItem('sd.customer', v);
      document.dispatchEvent(new CustomEvent('sd:customer', {detail: v}));
    });
  }

  const queueKey = (eventId) => `sd.queue.${eventId}`;
  const holdKey = (eventId) => `sd.hold.${eventId}`;

  // ---- the API ------------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;  // 0: no response (network)
      this.code = code;
    }
    get retryable() { return this.status === 0 || this.status >= 500; }
  }

  // JSON request; throws ApiError with the body's {"error","message"} on a non-2xx answer.
  // `retries`: resend after a network failure (the same headers, so the same Idempotency-Key).
  async function api(method, path, {body, headers = {}, retries = 0} = {}) {
    const init = {method, headers: {Accept: 'application/json', ...headers}, cache: 'no-store'};
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers['Content-Type'] = 'application/json';
    }
    let res;
    for (let attempt = 0;; attempt++) {
      try {
        res = await fetch(path, init);
        break;
      } catch (e) {
        if (attempt >= retries) throw new ApiError(0, 'network', `Network error: ${e.message}`);
        await sleep(300 * (attempt + 1));
      }
    }
    const text = await res.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = null;
    }
    if (!res.ok) {
      const code = (data && data.error) || `http_${res.status}`;
      let msg = (data && data.message) || text.trim() || `${res.status} ${res.statusText}`;
      // Core messages start with their code ("seat_unavailable: seat 12 ... is held"): the code
      // is kept in ApiError.code, the person reads the rest.
      if (msg.startsWith(`${code}: `) && msg.length > code.length + 2) {
        msg = msg.slice(code.length + 2);
        msg = msg[0].toUpperCase() + msg.slice(1);
      }
      throw new ApiError(res.status, code, msg);
    }
    return {status: res.status, data, replayed: res.headers.get('Idempotent-Replayed') === 'true'};
  }

  // ---- page chrome ----------------------------------------------------------------------------

  const app = () => $('#app');

  function render(...nodes) { app().replaceChildren(...nodes); }

  // The message area; `error` (an ApiError) also leaves its code in data-error for tests.
  function setStatus(text, kind = 'info', extra, error) {
    const el = $('#status');
    if (!el) return;
    el.dataset.kind = kind;
    if (error && error.code)
      el.dataset.error = error.code;
    else
      delete el.dataset.error;
    el.replaceChildren(text || '');
    if (extra) el.append(' ', extra);
  }

  function notFound(what) {
    document.title = 'Not found · sd tickets';
    render(
        h('section', {class: 'empty'}, h('h1', {text: what}),
          h('p', {}, h('a', {href: '/'}, '← All events'))));
  }

  // ---- "/": the event list --------------------------------------------------------------------

  async function eventsPage() {
    document.title = 'Events · sd tickets';
    const list = h('ul', {class: 'events', id: 'events'});
    render(h('h1', {text: 'Upcoming events'}), list, h('p', {id: 'status', role: 'status'}));
    let shown = '';
    const refresh = async () => {
      try {
        const {data} = await api('GET', '/v1/events');
        const events = (data && data.events) || [];
        const text = JSON.stringify(events);
        if (text === shown) return;  // unchanged: keep the DOM (and the focus)
        shown = text;
        if (!events.length) {
          list.replaceChildren(h('li', {class: 'empty', text: 'No events on sale.'}));
          return;
        }
        list.replaceChildren(...events.map(eventCard));
        setStatus('');
      } catch (e) {
        setStatus(`Could not load the events: ${e.message}`, 'error');
      }
    };
    await refresh();
    setInterval(refresh, 5000);
  }

  function eventCard(e) {
    const href = e.waiting_room ? `/queue/${e.id}` : `/events/${e.id}`;
    const total = Number(e.seat_count) || 0;
    const avail = Number(e.available) || 0;
    const pct = total ? Math.round((100 * avail) / total) : 0;
    return h(
        'li', {class: 'event-card', 'data-event-id': e.id},
        h('a', {href, class: 'event-link'},
          h('div', {class: 'event-title'}, h('h2', {text: e.name}),
            e.waiting_room ? h('span', {
              class: 'badge',
              title: 'High demand: shoppers are let in from a queue',
              text: 'Waiting room'
            }) :
                             null),
          h('p', {class: 'event-meta'}, `${e.venue} · ${fmtDate(e.starts_at_ms)}`),
          h('div', {class: 'availability'},
            h('div', {class: 'bar', role: 'img', 'aria-label': `${pct}% available`},
              h('span', {style: `width:${pct}%`})),
            h('span', {class: 'avail-text'}, `${avail} of ${total} seats available`)),
          h('span', {class: 'cta', text: e.waiting_room ? 'Join the queue →' : 'Pick seats →'})));
  }

  // ---- "/queue/{id}": the waiting room --------------------------------------------------------

  async function queuePage(eventId) {
    document.title = 'Waiting room · sd tickets';
    let event = null;
    try {
      event = (await api('GET', `/v1/events/${eventId}`)).data;
    } catch (e) {
      if (e.status === 404) return notFound('Event not found');
    }
    if (event && !event.waiting_room) {
      location.replace(`/events/${eventId}`);
      return;
    }
    const card =
        h('section', {class: 'queue-card', id: 'queue', 'aria-live': 'polite'},
          h('p', {class: 'queue-label', text: 'Your place in line'}),
          h('p', {class: 'queue-position', id: 'queue-position', text: '…'}),
          h('p', {class: 'queue-eta', id: 'queue-eta'}),
          h('p', {class: 'queue-state'},
            'Status: ', h('strong', {id: 'queue-state', text: 'joining'})),
          h('div', {class: 'queue-progress'}, h('span')),
          h('div', {class: 'actions'},
            h('button', {type: 'button', id: 'leave', class: 'secondary', text: 'Leave the queue'}),
            h('button', {type: 'button', id: 'rejoin', hidden: true, text: 'Join again'})));
    render(
        h('p', {class: 'crumbs'}, h('a', {href: '/'}, '← All events')),
        h('h1', {text: event ? event.name : 'Waiting room'}),
        event ? h('p', {class: 'event-meta'}, `${event.venue} · ${fmtDate(event.starts_at_ms)}`) :
                null,
        h('p', {class: 'lede'},
          'This sale is busy. You are in a virtual queue: keep this page open and you will be ' +
              'taken to the seat map when it is your turn.'),
        card, h('p', {id: 'status', role: 'status', 'aria-live': 'polite'}));

    let es = null;
    let firstPosition = 0;
    let done = false;

    const show = (q) => {
      card.dataset.state = q.state;
      $('#queue-state').textContent = q.state;
      if (q.state === 'waiting') {
        firstPosition = Math.max(firstPosition, q.position);
        $('#queue-position').textContent = `#${q.position}`;
        const ahead = q.position - 1;
        $('#queue-eta').textContent =
            `${ahead} ${ahead === 1 ? 'person' : 'people'} ahead of you · ` +
            `estimated wait ${fmtEta(q.eta_ms)}`;
        const frac = firstPosition > 1 ? (firstPosition - q.position) / (firstPosition - 1) : 0;
        $('.queue-progress > span').style.width = `${Math.round(100 * frac)}%`;
      } else if (q.state === 'active') {
        $('#queue-position').textContent = 'It’s your turn!';
        $('#queue-eta').textContent = `You have ${fmtDuration(q.active_left_ms)} to pick and pay.`;
        $('.queue-progress > span').style.width = '100%';
      } else {
        $('#queue-position').textContent = q.state === 'left' ? 'You left the queue' : 'Time is up';
        $('#queue-eta').textContent = 'Join again to get a new place in line.';
      }
    };

    const finish = (q) => {
      if (done) return;
      if (q.state === 'active') {
        done = true;
        if (es) es.close();
        session.setItem(queueKey(eventId), q.ticket);
        setStatus('Taking you to the seat map…', 'ok');
        setTimeout(() => location.assign(`/events/${eventId}`), 1200);
      } else if (q.state === 'expired' || q.state === 'left') {
        if (es) es.close();
        session.removeItem(queueKey(eventId));
        $('#leave').hidden = true;
        $('#rejoin').hidden = false;
      }
    };

    const watch = (ticket) => {
      if (es) es.close();
      es = new EventSource(`/v1/queue/${encodeURIComponent(ticket)}/stream`);
      es.addEventListener('status', (m) => {
        let q;
        try {
          q = JSON.parse(m.data);
        } catch {
          return;
        }
        show(q);
        finish(q);
      });
      es.onerror = async () => {
        if (done) return;
        // The stream ended (server restart, ticket forgotten?): ask once what the ticket is now.
        try {
          const {data} = await api('GET', `/v1/queue/${encodeURIComponent(ticket)}`);
          show(data);
          finish(data);
        } catch (e) {
          if (e.status === 404) {
            if (es) es.close();
            setStatus('Your queue ticket is no longer valid.', 'error');
            card.dataset.state = 'expired';
            $('#queue-state').textContent = 'expired';
            $('#leave').hidden = true;
            $('#rejoin').hidden = false;
          }
        }
      };
    };

    const join = async () => {
      setStatus('Joining the queue…');
      $('#rejoin').hidden = true;
      $('#leave').hidden = false;
      for (;;) {
        try {
          const {data} = await api(
              'POST', `/v1/events/${eventId}/queue`, {body: {customer: customer()}, retries: 2});
          session.setItem(queueKey(eventId), data.ticket);
          card.dataset.ticket = data.ticket;
          setStatus('');
          show(data);
          finish(data);
          if (!done) watch(data.ticket);
          return;
        } catch (e) {
          if (e.status === 400) {  // no waiting room for this event after all
            location.replace(`/events/${eventId}`);
            return;
          }
          setStatus(`${e.message} — retrying in 5 s`, 'error');
          await sleep(5000);
        }
      }
    };

    $('#leave').addEventListener('click', async () => {
      const ticket = session.getItem(queueKey(eventId));
      if (es) es.close();
      if (ticket) {
        try {
          await api('POST', `/v1/queue/${encodeURIComponent(ticket)}/leave`, {body: {}});
        } catch (e) {
          if (e.status !== 404) setStatus(e.message, 'error');
        }
      }
      show({state: 'left'});
      finish({state: 'left'});
    });
    $('#rejoin').addEventListener('click', join);
    await join();
  }

  // ---- "/events/{id}": the seat map, hold and pay ----------------------------------------------

  async function seatMapPage(eventId) {
    // A queue ticket may come in the URL (?ticket=...): keep it in sessionStorage, drop it from
    // the address bar.
    const params = new URLSearchParams(location.search);
    if (params.get('ticket')) {
      session.setItem(queueKey(eventId), params.get('ticket'));
      history.replaceState(null, '', `/events/${eventId}`);
    }

    const S = {
      event: null,
      seats: new Map(),  // id -> {seat, el, title}
      selected: new Set(),
      hold: null,  // {id, seats, amount_cents, deadline}
      purchased: new Set(),
      order: null,
      ticket: session.getItem(queueKey(eventId)),
      maxSeats: MAX_SEATS,
      admitted: false,
      busy: false,
      payRetry: null,  // {key, card, hold}: reuse the key when resending a failed pay
      tierColor: new Map(),
      timer: 0,
    };

    try {
      S.event = (await api('GET', `/v1/events/${eventId}`, {retries: 1})).data;
    } catch (e) {
      if (e.status === 404) return notFound('Event not found');
      render(
          h('p', {class: 'error', id: 'status', text: `Could not load the event: ${e.message}`}));
      return;
    }
    const ev = S.event;
    if (Number(ev.max_seats_per_hold) > 0) S.maxSeats = Number(ev.max_seats_per_hold);
    document.title = `${ev.name} · sd tickets`;
    (ev.tiers || []).forEach((t, i) => tierColor(S, t.name, i));

    const strategy = typeof ev.strategy === 'string' ?
        ev.strategy :
        ev.strategy && (ev.strategy.name || ev.strategy.strategy);
    const map = svg('svg', {
      id: 'seatmap',
      class: 'seatmap',
      role: 'group',
      'aria-label': `Seat map of ${ev.venue}`,
      preserveAspectRatio: 'xMidYMin meet'
    });
    render(
        h('div', {class: 'event-head'},
            h('div', {},
                h('p', {class: 'crumbs'}, h('a', {href: '/'}, '← All events')),
                h('h1', {id: 'event-name', text: ev.name}),
                h('p', {class: 'event-meta'}, `${ev.venue} · ${fmtDate(ev.starts_at_ms)}`,
                    strategy ? h('span', {class: 'chip', title: 'Seat-locking strategy of this ' +
                      'ticketd', text: strategy}) : null)),
            h('span', {id: 'live', class: 'live', 'data-live': 'connecting', role: 'status',
              text: 'Connecting…'})),
        h('div', {id: 'queue-banner', class: 'banner', hidden: true}),
        h('div', {class: 'layout'},
            h('section', {class: 'map-col'}, legend(S), h('div', {class: 'map-wrap'}, map)),
            h('aside', {class: 'panel'},
                h('section', {id: 'selection-box', class: 'box'},
                    h('h2', {text: 'Your selection'}),
                    h('p', {class: 'hint', id: 'selection-hint',
                      text: `Click available seats on the map (up to ${S.maxSeats}).`}),
                    h('ul', {id: 'selection', class: 'seat-list'}),
                    h('p', {class: 'total'}, 'Total ', h('strong', {id: 'total', text: fmtMoney(0)})),
                    h('div', {class: 'actions'},
                        h('button', {type: 'button', id: 'hold', disabled: true, text: 'Hold seats'}),
                        h('button', {type: 'button', id: 'clear', class: 'secondary', disabled: true,
                          text: 'Clear'}))),
                h('section', {id: 'hold-box', class: 'box hold', hidden: true},
                    h('h2', {text: 'Your hold'}),
                    h('p', {class: 'countdown'}, 'Seats held for ',
                        h('strong', {id: 'countdown', 'aria-live': 'off', text: '–'})),
                    h('ul', {id: 'hold-seats', class: 'seat-list'}),
                    h('p', {class: 'total'}, 'Total ', h('strong', {id: 'hold-total'})),
                    h('label', {class: 'field', for: 'card'}, 'Card number',
                        h('input', {id: 'card', inputmode: 'numeric', autocomplete: 'cc-number',
                          value: '4242 4242 4242 4242', maxlength: 23})),
                    h('p', {class: 'hint'},
                        'Test cards: 4242 4242 4242 4242 pays, 4000 0000 0000 0002 is declined.'),
                    h('div', {class: 'actions'},
                        h('button', {type: 'button', id: 'pay', text: 'Pay'}),
                        h('button', {type: 'button', id: 'cancel', class: 'secondary',
                          text: 'Cancel hold'}))),
                h('section', {id: 'order', class: 'box order', hidden: true}),
                h('p', {id: 'status', class: 'status', role: 'status', 'aria-live': 'polite'}))));

      $('#hold').addEventListener('click', () => holdSeats(S));
      $('#clear').addEventListener('click', () => {
        for (const id of [...S.selected]) toggleSelect(S, id, false);
        updatePanel(S);
      });
      $('#pay').addEventListener('click', () => pay(S));
      $('#cancel').addEventListener('click', () => cancelHold(S));
      $('#card').addEventListener('keydown', (e) => {
        if (e.key === 'Enter') pay(S);
      });
      map.addEventListener('click', (e) => {
        const el = e.target.closest('.seat');
        if (el) seatClicked(S, Number(el.dataset.seatId));
      });
      map.addEventListener('keydown', (e) => {
        const el = e.target.closest && e.target.closest('.seat');
        if (el && (e.key === 'Enter' || e.key === ' ')) {
          e.preventDefault();
          seatClicked(S, Number(el.dataset.seatId));
        }
      });

      // The map: the plain GET first (so it shows even where event streams are blocked), then the
      // live stream, whose snapshot and deltas are applied by version.
      try {
        const {data} = await api('GET', `/v1/events/${eventId}/seats`, {retries: 2});
        applySnapshot(S, data);
      } catch (e) {
        setStatus(`Could not load the seat map: ${e.message}`, 'error');
      }
      connectStream(S, eventId);
      await checkQueue(S, eventId);
      await restoreHold(S, eventId);
      updatePanel(S);
      document.addEventListener('sd:customer', () => {
        if (S.hold)
          setStatus('Your hold stays in the name it was made in; pay or cancel it first.', 'info');
      });
  }

  function tierColor(S, tier, index) {
      if (!S.tierColor.has(tier)) {
        const i = index !== undefined ? index : S.tierColor.size;
        S.tierColor.set(
            tier, TIER_COLORS[tier.toLowerCase()] || EXTRA_COLORS[i % EXTRA_COLORS.length]);
      }
      return S.tierColor.get(tier);
  }

  function legend(S) {
      const swatch = (cls, style) => {
        const s = svg(
            'svg',
            {class: 'swatch', viewBox: '0 0 20 20', width: 18, height: 18, 'aria-hidden': 'true'});
        const c = svg('circle', {cx: 10, cy: 10, r: 7, class: cls});
        if (style) c.setAttribute('style', style);
        s.append(c);
        return s;
      };
      const items = (S.event.tiers || [])
                        .map(
                            (t) =>
                                h('li', {class: 'legend-tier', 'data-tier': t.name},
                                  swatch('', `--tier:${tierColor(S, t.name)}`),
                                  h('span', {class: 'tier-name', text: t.name}),
                                  h('span', {class: 'price', text: fmtMoney(t.price_cents)})));
      const states = [
        ['selected', 'Your selection', 'selected', `--tier:${EXTRA_COLORS[0]}`],
        ['mine', 'Your hold', 'mine', ''],
        ['held', 'Held', '', ''],
        ['sold', 'Sold', '', ''],
      ].map(([key, label, cls, style]) => {
        const sw = swatch(cls, style);
        sw.firstChild.dataset.state = key === 'selected' ? 'available' :
            key === 'sold'                               ? 'sold' :
                                                           'held';
        return h('li', {class: 'legend-state'}, sw, h('span', {text: label}));
      });
      return h(
          'div', {class: 'legend', id: 'legend'},
          h('ul', {class: 'legend-tiers', 'aria-label': 'Price tiers'}, items),
          h('ul', {class: 'legend-states', 'aria-label': 'Seat states'}, states));
  }

  // Builds the SVG once (the layout of a venue never changes), then only updates states.
  function buildMap(S, seats) {
      const map = $('#seatmap');
      map.replaceChildren();
      S.seats.clear();
      if (!seats.length) return;
      let minX = Infinity;
      let maxX = -Infinity;
      let minY = Infinity;
      let maxY = -Infinity;
      for (const s of seats) {
        minX = Math.min(minX, s.x);
        maxX = Math.max(maxX, s.x);
        minY = Math.min(minY, s.y);
        maxY = Math.max(maxY, s.y);
      }
      const pad = 40;
      const stageH = 34;
      const top = minY - 2 * stageH - 20;  // stage above the first row, a section label between
      const width = maxX - minX + 2 * pad;
      map.setAttribute('viewBox', `${minX - pad} ${top} ${width} ${maxY - top + pad}`);
      const cx = (minX + maxX) / 2;
      const stageW = Math.min(width * 0.55, 520);
      const stage = svg('g', {class: 'stage', 'aria-hidden': 'true'});
      stage.append(
          svg('rect', {x: cx - stageW / 2, y: top + 8, width: stageW, height: stageH, rx: 8}));
      const st = svg('text', {
        x: cx,
        y: top + 8 + stageH / 2,
        'text-anchor': 'middle',
        'dominant-baseline': 'central'
      });
      st.textContent = 'STAGE';
      stage.append(st);
      map.append(stage);

      // Section and row labels.
      const sections = new Map();  // section -> {minY, rows: Map(row -> {minX, y})}
      for (const s of seats) {
        let sec = sections.get(s.section);
        if (!sec)
          sections.set(s.section, (sec = {minY: s.y, minX: s.x, maxX: s.x, rows: new Map()}));
        sec.minY = Math.min(sec.minY, s.y);
        sec.minX = Math.min(sec.minX, s.x);
        sec.maxX = Math.max(sec.maxX, s.x);
        const r = sec.rows.get(s.row);
        if (!r)
          sec.rows.set(s.row, {minX: s.x, maxX: s.x, y: s.y});
        else {
          r.minX = Math.min(r.minX, s.x);
          r.maxX = Math.max(r.maxX, s.x);
        }
      }
      const labels = svg('g', {class: 'labels', 'aria-hidden': 'true'});
      for (const [name, sec] of sections) {
        const t = svg('text', {
          x: (sec.minX + sec.maxX) / 2,
          y: sec.minY - 18,
          class: 'section-label',
          'text-anchor': 'middle'
        });
        t.textContent = name.toUpperCase();
        labels.append(t);
        for (const [row, r] of sec.rows) {
          for (const [x, anchor] of [[r.minX - 16, 'end'], [r.maxX + 16, 'start']]) {
            const rt = svg('text', {
              x,
              y: r.y,
              class: 'row-label',
              'text-anchor': anchor,
              'dominant-baseline': 'central'
            });
            rt.textContent = row;
            labels.append(rt);
          }
        }
      }
      map.append(labels);

      const g = svg('g', {class: 'seats'});
      for (const s of seats) {
        const el = svg('circle', {
          class: 'seat',
          cx: s.x,
          cy: s.y,
          r: 8,
          'data-seat-id': s.id,
          'data-tier': s.tier,
          'data-state': s.state,
          style: `--tier:${tierColor(S, s.tier)}`,
          role: 'button'
        });
        const title = svg('title');
        el.append(title);
        g.append(el);
        const entry = {seat: {...s}, el, title};
        S.seats.set(s.id, entry);
        renderSeat(S, entry);
      }
      map.append(g);
  }

  function renderSeat(S, entry) {
      const {seat, el, title} = entry;
      const mine = !!(S.hold && S.hold.seats.includes(seat.id));
      const selected = S.selected.has(seat.id);
      el.dataset.state = seat.state;
      el.classList.toggle('mine', mine && seat.state === 'held');
      el.classList.toggle('selected', selected);
      el.classList.toggle('purchased', S.purchased.has(seat.id) && seat.state === 'sold');
      const selectable = seat.state === 'available';
      el.setAttribute('tabindex', selectable ? '0' : '-1');
      el.setAttribute('aria-disabled', selectable ? 'false' : 'true');
      el.setAttribute('aria-pressed', selected ? 'true' : 'false');
      const what = mine && seat.state === 'held'            ? 'held by you' :
          S.purchased.has(seat.id) && seat.state === 'sold' ? 'yours' :
          selected                                          ? 'selected' :
                                                              seat.state;
      const text = `${seat.label} · ${fmtMoney(seat.price_cents)} (${seat.tier}) · ${what}`;
      title.textContent = text;
      el.setAttribute('aria-label', text);
  }

  function applySnapshot(S, data) {
      const seats = (data && data.seats) || [];
      if (S.seats.size !== seats.length || seats.some((s) => !S.seats.has(s.id))) {
        buildMap(S, seats);
        return;
      }
      for (const s of seats) applyChange(S, {seat: s.id, state: s.state, version: s.version}, true);
  }

  // A delta (or a snapshot row: `orEqual`) applies only if newer than what the map has.
  function applyChange(S, c, orEqual = false) {
      const entry = S.seats.get(c.seat);
      if (!entry) return;
      const v = Number(c.version);
      if (v < entry.seat.version || (v === entry.seat.version && !orEqual)) return;
      const was = entry.seat.state;
      entry.seat.version = v;
      entry.seat.state = c.state;
      if (c.state !== 'available' && S.selected.has(c.seat)) {
        S.selected.delete(c.seat);
        setStatus(`${entry.seat.label} was just taken by someone else.`, 'warn');
        updatePanel(S);
      }
      if (was !== c.state || orEqual) renderSeat(S, entry);
  }

  function connectStream(S, eventId) {
      const live = $('#live');
      const setLive = (state, text) => {
        live.dataset.live = state;
        live.textContent = text;
      };
      const es = new EventSource(`/v1/events/${eventId}/seats/stream`);
      S.stream = es;
      es.addEventListener('open', () => setLive('open', 'Live'));
      es.addEventListener('snapshot', (m) => {
        try {
          applySnapshot(S, JSON.parse(m.data));
          setLive('open', 'Live');
        } catch (e) {
          console.error('bad snapshot', e);
        }
      });
      es.addEventListener('seat', (m) => {
        try {
          applyChange(S, JSON.parse(m.data));
        } catch (e) {
          console.error('bad seat event', e);
        }
      });
      es.addEventListener('error', () => {
        if (es.readyState === EventSource.CLOSED)
          setLive('closed', 'Offline — reload the page');
        else
          setLive('connecting', 'Reconnecting…');
      });
      window.addEventListener('pagehide', () => es.close());
  }

  // Waiting-room events: the shopper needs an active queue ticket (sent as X-Queue-Ticket).
  async function checkQueue(S, eventId) {
      if (!S.event.waiting_room) return;
      const banner = $('#queue-banner');
      banner.hidden = false;
      const notAdmitted = (text) => {
        S.admitted = false;
        banner.dataset.kind = 'warn';
        banner.replaceChildren(
            text, ' ',
            h('a',
              {href: `/queue/${eventId}`, class: 'button-link', text: 'Join the waiting room'}));
      };
      if (!S.ticket) {
        notAdmitted('This sale uses a waiting room: join the queue to pick seats.');
        return;
      }
      try {
        const {data} = await api('GET', `/v1/queue/${encodeURIComponent(S.ticket)}`);
        if (data.state !== 'active') {
          notAdmitted(
              data.state === 'waiting' ? 'You are still in the queue.' :
                                         'Your shopping time is over.');
          return;
        }
        S.admitted = true;
        banner.dataset.kind = 'ok';
        const until = Date.now() + Number(data.active_left_ms || 0);
        const left = h('strong', {id: 'queue-left'});
        banner.replaceChildren('You are in! Time left to shop: ', left);
        const tick = () => {
          const ms = until - Date.now();
          left.textContent = fmtDuration(ms);
          if (ms <= 0) {
            clearInterval(timer);
            session.removeItem(queueKey(eventId));
            S.ticket = null;
            notAdmitted('Your shopping time is over.');
            updatePanel(S);
          }
        };
        const timer = setInterval(tick, 500);
        tick();
      } catch (e) {
        if (e.status === 404) {
          session.removeItem(queueKey(eventId));
          S.ticket = null;
          notAdmitted('Your queue ticket is no longer valid.');
        } else {
          banner.dataset.kind = 'warn';
          banner.textContent = `Could not check your queue ticket: ${e.message}`;
        }
      }
  }

  function seatClicked(S, id) {
      const entry = S.seats.get(id);
      if (!entry || S.busy) return;
      if (S.hold) {
        setStatus('Pay for or cancel your current hold before picking more seats.', 'info');
        return;
      }
      if (S.selected.has(id)) {
        toggleSelect(S, id, false);
      } else if (entry.seat.state !== 'available') {
        setStatus(`${entry.seat.label} is ${entry.seat.state}.`, 'info');
        return;
      } else if (S.selected.size >= S.maxSeats) {
        setStatus(`You can hold at most ${S.maxSeats} seats at a time.`, 'warn');
        return;
      } else {
        toggleSelect(S, id, true);
      }
      setStatus('');
      updatePanel(S);
  }

  function toggleSelect(S, id, on) {
      if (on)
        S.selected.add(id);
      else
        S.selected.delete(id);
      const entry = S.seats.get(id);
      if (entry) renderSeat(S, entry);
  }

  function seatItems(S, ids) {
      return [...ids].sort((a, b) => a - b).map((id) => {
        const e = S.seats.get(id);
        const seat = e ? e.seat : {label: `Seat ${id}`, price_cents: 0, tier: ''};
        return h(
            'li', {'data-seat-id': id},
            h('span', {class: 'dot', style: `background:${tierColor(S, seat.tier || '?')}`}),
            h('span', {class: 'label', text: seat.label}),
            h('span', {class: 'price', text: fmtMoney(seat.price_cents)}));
      });
  }

  function updatePanel(S) {
      const sum = (ids) => [...ids].reduce(
          (a, id) => a + ((S.seats.get(id) || {seat: {}}).seat.price_cents || 0), 0);
      $('#selection').replaceChildren(...seatItems(S, S.selected));
      $('#total').textContent = fmtMoney(sum(S.selected));
      const needsQueue = S.event.waiting_room && !S.admitted;
      $('#hold').disabled = S.busy || !!S.hold || !S.selected.size || needsQueue;
      $('#hold').textContent = S.selected.size > 1 ? `Hold ${S.selected.size} seats` :
          S.selected.size === 1 ? 'Hold 1 seat' :
                                  'Hold seats';
      $('#clear').disabled = S.busy || !S.selected.size;
      $('#selection-box').hidden = !!S.hold;
      const box = $('#hold-box');
      box.hidden = !S.hold;
      if (S.hold) {
        $('#hold-seats').replaceChildren(...seatItems(S, S.hold.seats));
        $('#hold-total').textContent = fmtMoney(S.hold.amount_cents);
        $('#pay').textContent = `Pay ${fmtMoney(S.hold.amount_cents)}`;
      }
      $('#pay').disabled = S.busy || !S.hold;
      $('#cancel').disabled = S.busy || !S.hold;
  }

  function setBusy(S, busy) {
      S.busy = busy;
      document.body.classList.toggle('busy', busy);
      updatePanel(S);
  }

  function setHold(S, hold, eventId) {
      const ttl =
          hold.ttl_ms !== undefined ? Number(hold.ttl_ms) : Number(hold.expires_at_ms) - Date.now();
      S.hold = {
        id: hold.hold_id,
        seats: (hold.seats || []).map(Number),
        amount_cents: hold.amount_cents,
        deadline: Date.now() + ttl
      };
      local.setItem(
          holdKey(eventId), JSON.stringify({hold_id: hold.hold_id, customer: hold.customer}));
      $('#hold-box').dataset.holdId = hold.hold_id;
      for (const id of S.hold.seats) {
        const e = S.seats.get(id);
        if (!e) continue;
        S.selected.delete(id);
        // Our own write: show it at once (the stream's delta, with its version, follows).
        if (e.seat.state === 'available') e.seat.state = 'held';
        renderSeat(S, e);
      }
      clearInterval(S.timer);
      const tick = () => {
        if (!S.hold) return;
        const ms = S.hold.deadline - Date.now();
        const el = $('#countdown');
        el.textContent = fmtDuration(ms);
        el.dataset.urgent = ms < 60000 ? 'true' : 'false';
        if (ms <= 0) {
          clearHold(S, eventId);
          setStatus('Your hold expired and the seats were released.', 'error');
        }
      };
      S.timer = setInterval(tick, 250);
      tick();
      updatePanel(S);
  }

  function clearHold(S, eventId) {
      clearInterval(S.timer);
      const seats = S.hold ? S.hold.seats : [];
      S.hold = null;
      S.payRetry = null;
      local.removeItem(holdKey(eventId));
      delete $('#hold-box').dataset.holdId;
      for (const id of seats) {
        const e = S.seats.get(id);
        if (e) renderSeat(S, e);
      }
      updatePanel(S);
  }

  // After a reload: the shopper's hold (or order) for this event, if still there.
  async function restoreHold(S, eventId) {
      let saved = null;
      try {
        saved = JSON.parse(local.getItem(holdKey(eventId)) || 'null');
      } catch {
        saved = null;
      }
      if (!saved || !saved.hold_id) return;
      if (saved.customer && saved.customer !== customer()) return;
      try {
        const {data} = await api('GET', `/v1/holds/${encodeURIComponent(saved.hold_id)}`);
        if (data.status === 'active' && Number(data.ttl_ms) > 0) {
          setHold(S, data, S.event.id);
          setStatus('Welcome back: your seats are still held.', 'info');
          return;
        }
      } catch {
        // gone: forget it
      }
      local.removeItem(holdKey(eventId));
  }

  async function holdSeats(S) {
      if (!S.selected.size || S.hold || S.busy) return;
      const eventId = S.event.id;
      const seats = [...S.selected].sort((a, b) => a - b);
      // One key per attempt: the automatic resend after a network failure reuses it, so a hold
      // that was made but whose answer was lost is returned, not made twice.
      const headers = {'Idempotency-Key': uuid()};
      if (S.ticket) headers['X-Queue-Ticket'] = S.ticket;
      setBusy(S, true);
      setStatus(`Holding ${seats.length} seat${seats.length > 1 ? 's' : ''}…`);
      try {
        const {data} = await api(
            'POST', `/v1/events/${eventId}/holds`,
            {body: {customer: customer(), seats}, headers, retries: 2});
        setHold(S, data, eventId);
        setStatus(`Held! Pay within ${fmtDuration(Number(data.ttl_ms))} to keep the seats.`, 'ok');
      } catch (e) {
        if (e.code === 'not_admitted') {
          setStatus(
              e.message, 'error',
              h('a', {href: `/queue/${eventId}`, text: 'Join the waiting room'}), e);
        } else {
          setStatus(e.message, 'error', null, e);
        }
      } finally {
        setBusy(S, false);
      }
  }

  async function pay(S) {
      if (!S.hold || S.busy) return;
      const card = $('#card').value.replace(/[\s-]/g, '');
      if (!/^\d{12,19}$/.test(card)) {
        setStatus('Enter a card number of 12 to 19 digits.', 'error');
        $('#card').focus();
        return;
      }
      const hold = S.hold.id;
      const eventId = S.event.id;
      // Retrying a payment whose outcome is unknown (network error, 5xx) resends the same key, so
      // the card is never charged twice; any other attempt gets a new key.
      const r = S.payRetry;
      const key = r && r.hold === hold && r.card === card ? r.key : uuid();
      setBusy(S, true);
      setStatus('Paying…');
      try {
        const {data, replayed} = await api(
            'POST', `/v1/holds/${encodeURIComponent(hold)}/pay`,
            {body: {customer: customer(), card}, headers: {'Idempotency-Key': key}, retries: 2});
        S.payRetry = null;
        for (const id of data.seats || S.hold.seats) S.purchased.add(Number(id));
        clearHold(S, eventId);
        for (const id of data.seats || []) {
          const e = S.seats.get(Number(id));
          if (!e) continue;
          if (e.seat.state !== 'sold') e.seat.state = 'sold';
          renderSeat(S, e);
        }
        showOrder(S, data);
        setStatus(
            replayed ? 'Payment confirmed (replayed from an earlier attempt).' :
                       'Payment confirmed. Enjoy the show!',
            'ok');
      } catch (e) {
        S.payRetry = e.retryable ? {key, card, hold} : null;
        let msg = e.message;
        if (e.retryable) msg += ' — press Pay again to retry safely (same Idempotency-Key).';
        setStatus(msg, 'error', null, e);
        if (['hold_expired', 'hold_not_active', 'not_found', 'not_your_hold'].includes(e.code)) {
          clearHold(S, eventId);
        }
      } finally {
        setBusy(S, false);
      }
  }

  async function cancelHold(S) {
      if (!S.hold || S.busy) return;
      const eventId = S.event.id;
      setBusy(S, true);
      try {
        await api(
            'POST', `/v1/holds/${encodeURIComponent(S.hold.id)}/cancel`,
            {body: {customer: customer()}, headers: {'Idempotency-Key': uuid()}, retries: 2});
        clearHold(S, eventId);
        setStatus('Hold cancelled: the seats are free again.', 'info');
      } catch (e) {
        setStatus(e.message, 'error', null, e);
        if (['hold_expired', 'hold_not_active', 'not_found'].includes(e.code))
          clearHold(S, eventId);
      } finally {
        setBusy(S, false);
      }
  }

  function showOrder(S, o) {
      S.order = o;
      const box = $('#order');
      box.hidden = false;
      box.dataset.orderId = o.order_id;
      box.dataset.status = o.status;
      const labels =
          (o.seats || []).map((id) => (S.seats.get(Number(id)) || {seat: {label: id}}).seat.label);
      box.replaceChildren(
          h('h2', {text: o.status === 'cancelled' ? 'Order cancelled' : 'Order confirmed'}),
          h('p', {}, 'Order ', h('code', {id: 'order-id', text: o.order_id})),
          h('p', {class: 'order-seats', text: labels.join(', ')}),
          h('p', {class: 'total'}, o.status === 'cancelled' ? 'Refunded ' : 'Paid ',
            h('strong', {text: fmtMoney(o.amount_cents)})),
          o.payment_id ? h('p', {class: 'hint'}, 'Payment ', h('code', {text: o.payment_id})) :
                         null,
          o.status === 'cancelled' ? null : h('div', {class: 'actions'}, h('button', {
                                                type: 'button',
                                                id: 'cancel-order',
                                                class: 'secondary',
                                                text: 'Cancel order (refund)',
                                                onclick: () => cancelOrder(S, o)
                                              })));
  }

  async function cancelOrder(S, o) {
      if (S.busy) return;
      if (!window.confirm(
              'Cancel this order? The seats go back on sale and the payment is refunded.')) {
        return;
      }
      setBusy(S, true);
      try {
        const {data} = await api(
            'POST', `/v1/orders/${encodeURIComponent(o.order_id)}/cancel`,
            {body: {customer: customer()}, headers: {'Idempotency-Key': uuid()}, retries: 2});
        for (const id of o.seats || []) S.purchased.delete(Number(id));
        showOrder(S, {...o, ...data, status: 'cancelled'});
        setStatus('Order cancelled and refunded.', 'info');
      } catch (e) {
        setStatus(e.message, 'error', null, e);
      } finally {
        setBusy(S, false);
      }
  }

  // ---- routing ------------------------------------------------------------------------------

  function start() {
      setupCustomerField();
      const path = location.pathname;
      let m;
      if ((m = path.match(/^\/events\/(\d+)\/?$/))) return seatMapPage(Number(m[1]));
      if ((m = path.match(/^\/queue\/(\d+)\/?$/))) return queuePage(Number(m[1]));
      return eventsPage();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
  })();
