// Switchyard stats page: polls GET /dashboard/state, renders it, and calls the admin API for
// operator actions. Plain browser JavaScript, no build step. Every value from the server goes
// into the DOM as text (textContent / text nodes / setAttribute), never as markup.

(() => {
  const TOKEN_KEY = 'switchyard.adminToken';
  const STATE_URL = '/dashboard/state';
  const HISTORY_URL = '/dashboard/history';
  const SERIES = ['sessions', 'newSessions', 'bytesIn', 'bytesOut', 'connectMs'];
  const PALETTE = ['#2563eb', '#d97706', '#059669', '#dc2626', '#7c3aed', '#0891b2', '#be185d', '#65a30d'];
  const FORCE_URL = '/force_disconnect';
  const MAX_ERRORS = 5;
  // Status value -> effect on new sessions ('none' | 'limited' | 'all'), written in by the server
  // from the plugin SDK's BACKEND_STATUSES, so the page's colours follow the one catalogue.
  const STATUS_EFFECTS = /*STATUS_EFFECTS*/ {};
  const TONES = { none: 'bad', limited: 'warn', all: 'good' };

  let refresh = 2000;
  let timer = null;
  let polling = false;
  /** An action finished while a poll was running: poll again right after it. */
  let pollAgain = false;
  /** Counters of the previous poll, for rates: { now, values: Map<key, {total, bytesIn, bytesOut, accepted}> } */
  let previous = null;
  /** What the admin API asks of callers, from the state: { token, readsOpen }; null until known. */
  let auth = null;
  /** The state route answered 401: a token is needed even to read. */
  let readNeedsToken = false;
  /** The history so far: sample times (ms) and, per entity key, one array per series. */
  const hist = { t: [], capacity: 600, interval: 1000, connectTimes: false, entities: new Map() };
  /** Per service: its section, the holders re-filled on each poll, and its charts. */
  const sections = new Map();

  const $ = (id) => document.getElementById(id);

  /** Creates an element; children that are strings or numbers become text nodes. */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    if (attrs) {
      for (const [name, value] of Object.entries(attrs)) {
        if (value === undefined || value === null || value === false) continue;
        if (name === 'class') node.className = value;
        else if (name === 'text') node.textContent = String(value);
        else node.setAttribute(name, value === true ? '' : String(value));
      }
    }
    for (const child of children) {
      if (child === undefined || child === null || child === false) continue;
      node.append(typeof child === 'object' ? child : String(child));
    }
    return node;
  }

  // ---- token -------------------------------------------------------------------------------

  function token() {
    try {
      return sessionStorage.getItem(TOKEN_KEY) || '';
    } catch {
      return '';
    }
  }

  function setToken(value) {
    try {
      if (value) sessionStorage.setItem(TOKEN_KEY, value);
      else sessionStorage.removeItem(TOKEN_KEY);
    } catch (err) {
      showError(`cannot keep the token in sessionStorage: ${err.message}`);
    }
    showTokenState();
  }

  /**
   * Buttons show when the admin API would take the call: a token is entered, or the API has no
   * token at all (loopback only). The read-only message only when a token is really required.
   */
  function showTokenState() {
    const has = token() !== '';
    const open = auth !== null && auth.token === false && !readNeedsToken;
    const canAct = has || open;
    document.body.classList.toggle('admin', canAct);
    $('token-forget').hidden = !has;
    $('token-fields').hidden = open && !has;
    let text;
    if (has) text = 'Token set for this tab: changes are enabled.';
    else if (open) text = 'No admin token is configured (loopback only): changes are enabled.';
    else if (auth !== null || readNeedsToken)
      text = 'Read-only: enter the admin token to drain, remove or force-disconnect.';
    else text = 'Connecting to the admin API…';
    $('token-state').textContent = text;
    $('token-state').dataset.mode = has ? 'token' : open ? 'open' : 'read-only';
    for (const b of document.querySelectorAll('[data-admin]'))
      b.hidden = !canAct || b.dataset.inactive === 'yes';
  }

  // ---- API ---------------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(method, url, status, message) {
      super(`${method} ${url}: ${status ? `${status} ` : ''}${message}`);
      this.status = status;
    }
  }

  /** Calls the admin API with the bearer token (when one is set); throws ApiError with the server's message. */
  async function api(method, url, body) {
    const headers = { accept: 'application/json' };
    const t = token();
    if (t) headers.authorization = `Bearer ${t}`;
    const init = { method, headers, cache: 'no-store', credentials: 'same-origin' };
    if (body !== undefined) {
      headers['content-type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(url, init);
    } catch (err) {
      throw new ApiError(method, url, 0, `network error: ${err.message}`);
    }
    const text = await res.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = null;
    }
    if (!res.ok) throw new ApiError(method, url, res.status, errorMessage(data, text, res.statusText));
    return data;
  }

  function errorMessage(data, text, statusText) {
    if (data && typeof data === 'object') {
      const message = typeof data.message === 'string' ? data.message : '';
      const error = typeof data.error === 'string' ? data.error : '';
      if (message && error) return `${error}: ${message}`;
      if (message || error) return message || error;
    }
    return (text || statusText || 'request failed').slice(0, 300);
  }

  // ---- errors ------------------------------------------------------------------------------

  function showError(message) {
    const list = $('errors');
    const close = el('button', { type: 'button', class: 'dismiss', 'aria-label': 'Dismiss' }, '×');
    const item = el(
      'div',
      { class: 'error' },
      el('span', { class: 'when' }, clock(Date.now())),
      ' ',
      message,
      close,
    );
    close.addEventListener('click', () => item.remove());
    list.prepend(item);
    while (list.children.length > MAX_ERRORS) list.lastElementChild.remove();
  }

  // ---- formatting --------------------------------------------------------------------------

  const intFmt = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

  function int(n) {
    return typeof n === 'number' && Number.isFinite(n) ? intFmt.format(n) : '–';
  }

  function bytes(n) {
    if (typeof n !== 'number' || !Number.isFinite(n)) return '–';
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) {
      n /= 1024;
      i++;
    }
    return i === 0 ? `${n} B` : `${n.toFixed(n < 10 ? 2 : 1)} ${units[i]}`;
  }

  function rate(n, unit) {
    if (n === null || n === undefined || !Number.isFinite(n)) return '–';
    if (unit === 'B') return `${bytes(Math.round(n))}/s`;
    return n < 10 ? n.toFixed(1) : intFmt.format(Math.round(n));
  }

  function age(ms) {
    let s = Math.max(0, Math.floor(ms / 1000));
    const d = Math.floor(s / 86400);
    s -= d * 86400;
    const h = Math.floor(s / 3600);
    s -= h * 3600;
    const m = Math.floor(s / 60);
    s -= m * 60;
    if (d > 0) return `${d}d${h}h`;
    if (h > 0) return `${h}h${m}m`;
    if (m > 0) return `${m}m${s}s`;
    return `${s}s`;
  }

  function clock(ms) {
    return new Date(ms).toLocaleTimeString('en-GB', { hour12: false });
  }

  function tone(status) {
    const effect = Object.hasOwn(STATUS_EFFECTS, status) ? STATUS_EFFECTS[status] : undefined;
    return TONES[effect] || 'other';
  }

  // ---- rendering ---------------------------------------------------------------------------

  /** Per-second rate of a counter between the previous poll and this one; null when unknown. */
  function perSecond(key, field, value, now) {
    if (!previous) return null;
    const old = previous.values.get(key);
    const dt = (now - previous.now) / 1000;
    if (!old || dt <= 0 || typeof old[field] !== 'number' || value < old[field]) return null;
    return (value - old[field]) / dt;
  }

  function renderProcess(state) {
    const p = state.process;
    $('process').textContent =
      `pid ${p.pid} · node ${p.node} · up ${age(p.uptime * 1000)} · ` +
      `${state.services.length} service${state.services.length === 1 ? '' : 's'}`;
  }

  function summaryTable(svc, now) {
    const key = `svc\n${svc.name}`;
    const c = svc.counters;
    const cells = [
      ['Sessions', int(svc.sessions), 'sessions'],
      ['Accepted/s', rate(perSecond(key, 'accepted', c.accepted, now)), 'accept-rate'],
      ['Accepted', int(c.accepted), 'accepted'],
      ['Established', int(c.established), 'established'],
      ['Rejected', int(c.rejected), 'rejected'],
      ['No backend', int(c.noBackend), 'no-backend'],
      ['Conn. failures', int(c.connectFailures), 'connect-failures'],
      ['Retries', int(c.retries), 'retries'],
      ['Dropped', int(c.dropped), 'dropped'],
      ['Closed', int(c.closed), 'closed'],
    ];
    if (svc.queue !== null && svc.queue !== undefined) cells.push(['Queue', int(svc.queue), 'queue']);
    return el(
      'table',
      { class: 'summary' },
      el('thead', null, el('tr', null, ...cells.map(([label]) => el('th', { scope: 'col' }, label)))),
      el(
        'tbody',
        null,
        el('tr', null, ...cells.map(([, value, col]) => el('td', { 'data-col': col }, value))),
      ),
    );
  }

  function statusBadges(status) {
    const entries = Object.entries(status || {});
    if (entries.length === 0) return el('span', { class: 'muted' }, '–');
    const wrap = el('span', { class: 'badges' });
    for (const [source, value] of entries) {
      wrap.append(
        el(
          'span',
          { class: 'badge', 'data-tone': tone(value), 'data-source': source },
          `${source}: ${value}`,
        ),
        ' ',
      );
    }
    return wrap;
  }

  /** The row's colour from the backend's one condition (server side: condition.ts). */
  const CONDITION_TONES = {
    up: 'up',
    draining: 'draining',
    removed: 'removed',
    down: 'bad',
    ejected: 'bad',
    'at-limit': 'bad',
    'half-open': 'warn',
    ramping: 'warn',
  };

  function rowTone(b) {
    const c = b.condition;
    if (c && Object.hasOwn(CONDITION_TONES, c.state)) return CONDITION_TONES[c.state];
    if (b.state !== 'up') return b.state;
    return Object.values(b.status || {}).some((v) => tone(v) === 'bad') ? 'bad' : 'up';
  }

  function conditionText(b) {
    const c = b.condition;
    if (!c) return b.state;
    if (c.state === 'ramping') return typeof c.ramp === 'number' ? `ramping ${c.ramp}%` : 'ramping';
    if (c.state === 'at-limit') return 'at limit';
    return c.state;
  }

  function actions(svc, b) {
    const common = {
      type: 'button',
      'data-admin': true,
      'data-service': svc.name,
      'data-address': b.address,
    };
    if (b.state === 'removed') return el('td', { class: 'actions' });
    return el(
      'td',
      { class: 'actions' },
      b.state === 'draining'
        ? el('button', { ...common, 'data-action': 'undrain', title: 'Take new sessions again' }, 'Undrain')
        : el(
            'button',
            { ...common, 'data-action': 'drain', title: 'No new sessions; open ones continue' },
            'Drain',
          ),
      el(
        'button',
        { ...common, 'data-action': 'weight', 'data-weight': b.weight, title: 'Change the weight' },
        'Weight…',
      ),
      el(
        'button',
        { ...common, 'data-action': 'remove', class: 'danger', title: 'Remove from the service' },
        'Remove',
      ),
    );
  }

  function backendRow(svc, b, now) {
    const key = `be\n${svc.name}\n${b.address}`;
    const cell = (col, value, cls) => el('td', { 'data-col': col, class: cls }, value);
    return el(
      'tr',
      { 'data-backend': b.address, 'data-state': b.state, 'data-tone': rowTone(b) },
      el(
        'th',
        { scope: 'row', class: 'addr' },
        b.address,
        b.origin ? el('span', { class: 'origin', 'data-origin': b.origin }, b.origin) : null,
      ),
      cell('weight', int(b.weight), 'num'),
      el(
        'td',
        {
          'data-col': 'state',
          'data-condition': b.condition ? b.condition.state : b.state,
          'data-takes': b.condition ? b.condition.takes : null,
          title: b.condition ? b.condition.reason : null,
        },
        conditionText(b),
      ),
      el('td', { 'data-col': 'status' }, statusBadges(b.status)),
      cell('since', b.changedAt ? age(now - b.changedAt) : '–', 'num'),
      cell('active', int(b.active), 'num'),
      cell('session-rate', rate(perSecond(key, 'total', b.total, now)), 'num'),
      cell('total', int(b.total), 'num'),
      cell('bytes-in', bytes(b.bytesIn), 'num'),
      cell('bytes-out', bytes(b.bytesOut), 'num'),
      cell('in-rate', rate(perSecond(key, 'bytesIn', b.bytesIn, now), 'B'), 'num'),
      cell('out-rate', rate(perSecond(key, 'bytesOut', b.bytesOut, now), 'B'), 'num'),
      cell('connect-failures', int(b.connectFailures), 'num'),
      actions(svc, b),
    );
  }

  /** Column titles and their tooltips. */
  const BACKEND_HEADERS = [
    ['Backend', 'host:port'],
    ['Weight', 'Relative share of new sessions (1-256)'],
    [
      'State',
      'Whether it takes new sessions: up; draining; removed; down (health check); ejected (breaker open); half-open (breaker trials); ramping (slow start); at limit (backend-limits). Hover a state for the reason.',
    ],
    ['Status', 'Set by plugins: health check, circuit breaker, outlier detection'],
    ['Since', 'Time since the last change of state, weight or status'],
    ['Active', 'Sessions on this backend now (connecting or piping)'],
    ['Sess/s', 'New sessions per second since the previous poll'],
    ['Total', 'Sessions that connected to this backend'],
    ['In', 'Bytes from clients to the backend, open sessions included'],
    ['Out', 'Bytes from the backend to clients, open sessions included'],
    ['In/s', 'Bytes per second, client to backend, since the previous poll'],
    ['Out/s', 'Bytes per second, backend to client, since the previous poll'],
    ['Conn. fail', 'Failed connect attempts (refused, timeout, reset, TLS)'],
    ['', ''],
  ];

  /** The service's line under its backends, as HAProxy's "Backend" row: sums of the rows above. */
  function totalsRow(svc, now) {
    const sum = (field) => svc.backends.reduce((n, b) => n + b[field], 0);
    const key = `tot\n${svc.name}`;
    const cell = (col, value) => el('td', { 'data-col': col, class: 'num' }, value);
    const total = sum('total');
    const bytesIn = sum('bytesIn');
    const bytesOut = sum('bytesOut');
    return el(
      'tr',
      { class: 'totals' },
      el('th', { scope: 'row' }, 'Total'),
      cell('weight', int(sum('weight'))),
      el('td'),
      el('td'),
      el('td'),
      cell('active', int(sum('active'))),
      cell('session-rate', rate(perSecond(key, 'total', total, now))),
      cell('total', int(total)),
      cell('bytes-in', bytes(bytesIn)),
      cell('bytes-out', bytes(bytesOut)),
      cell('in-rate', rate(perSecond(key, 'bytesIn', bytesIn, now), 'B')),
      cell('out-rate', rate(perSecond(key, 'bytesOut', bytesOut, now), 'B')),
      cell('connect-failures', int(sum('connectFailures'))),
      el('td', { class: 'actions' }),
    );
  }

  function backendsTable(svc, now) {
    const rows = svc.backends.map((b) => backendRow(svc, b, now));
    const body =
      rows.length > 0
        ? el('tbody', null, ...rows)
        : el(
            'tbody',
            null,
            el('tr', null, el('td', { colspan: BACKEND_HEADERS.length, class: 'muted' }, 'No backends.')),
          );
    return el(
      'div',
      { class: 'table-wrap' },
      el(
        'table',
        { class: 'backends' },
        el(
          'thead',
          null,
          el(
            'tr',
            null,
            ...BACKEND_HEADERS.map(([h, title]) => el('th', { scope: 'col', title: title || null }, h)),
          ),
        ),
        body,
        rows.length > 0 ? el('tfoot', null, totalsRow(svc, now)) : null,
      ),
    );
  }

  /** A service's section; built once, its parts re-filled on each poll so the charts persist. */
  function serviceSection(svc, now) {
    let s = sections.get(svc.name);
    if (!s) {
      s = {
        node: el('section', { class: 'service', 'data-service': svc.name }),
        head: el('h2'),
        summary: el('div', { class: 'table-wrap' }),
        charts: el('div', { class: 'charts' }),
        table: el('div'),
        plots: new Map(),
      };
      s.node.append(s.head, s.summary, s.charts, s.table);
      sections.set(svc.name, s);
    }
    s.head.replaceChildren(
      svc.name,
      ' ',
      el(
        'span',
        { class: 'muted listen' },
        svc.listen.length > 0 ? svc.listen.join(', ') : 'pool (reached through routes)',
      ),
    );
    if (svc.state !== 'running')
      s.head.append(' ', el('span', { class: 'badge', 'data-tone': 'warn' }, svc.state));
    s.summary.replaceChildren(summaryTable(svc, now));
    s.table.replaceChildren(backendsTable(svc, now));
    return s;
  }

  function remember(state) {
    const values = new Map();
    for (const svc of state.services) {
      values.set(`svc\n${svc.name}`, { accepted: svc.counters.accepted });
      const sum = (field) => svc.backends.reduce((n, b) => n + b[field], 0);
      values.set(`tot\n${svc.name}`, {
        total: sum('total'),
        bytesIn: sum('bytesIn'),
        bytesOut: sum('bytesOut'),
      });
      for (const b of svc.backends)
        values.set(`be\n${svc.name}\n${b.address}`, {
          total: b.total,
          bytesIn: b.bytesIn,
          bytesOut: b.bytesOut,
        });
    }
    previous = { now: state.now, values };
  }

  function render(state) {
    renderProcess(state);
    auth = state.admin ?? null;
    readNeedsToken = false;
    const shown = state.services.map((svc) => serviceSection(svc, state.now));
    for (const name of [...sections.keys()])
      if (!state.services.some((svc) => svc.name === name)) sections.delete(name);
    const main = $('services');
    if (shown.length !== main.children.length || shown.some((s, i) => main.children[i] !== s.node))
      main.replaceChildren(...shown.map((s) => s.node));
    renderTopology(state);
    renderTimeline(state.timeline || [], state.now);
    remember(state);
    showTokenState();
  }

  // ---- history and charts ------------------------------------------------------------------

  /** Appends the samples of a history answer; trims to the ring's capacity. */
  function mergeHistory(view) {
    hist.capacity = view.capacity;
    hist.interval = view.interval;
    hist.connectTimes = view.connectTimes === true;
    const k = view.t.length;
    if (k === 0) return;
    const n0 = hist.t.length;
    hist.t.push(...view.t);
    const touched = new Set();
    const add = (key, series) => {
      let e = hist.entities.get(key);
      if (!e) {
        e = {};
        for (const name of SERIES) e[name] = new Array(n0).fill(null);
        hist.entities.set(key, e);
      }
      for (const name of SERIES) e[name].push(...(series[name] || new Array(k).fill(null)));
      touched.add(key);
    };
    for (const svc of view.services) {
      add(`s\n${svc.name}`, svc.series);
      for (const b of svc.backends) add(`b\n${svc.name}\n${b.address}`, b.series);
    }
    for (const [key, e] of hist.entities)
      if (!touched.has(key)) for (const name of SERIES) e[name].push(...new Array(k).fill(null));
    const extra = hist.t.length - hist.capacity;
    if (extra > 0) {
      hist.t.splice(0, extra);
      for (const [key, e] of hist.entities) {
        for (const name of SERIES) e[name].splice(0, extra);
        if (SERIES.every((name) => e[name].every((v) => v === null))) hist.entities.delete(key);
      }
    }
  }

  async function pollHistory() {
    const since = hist.t.length > 0 ? hist.t[hist.t.length - 1] : 0;
    const view = await api('GET', `${HISTORY_URL}?since=${since}`);
    // The proxy restarted (its clock went back, or its samples start over): take it whole.
    if (since > 0 && view.t.length > 0 && view.t[0] <= since) {
      hist.t = [];
      hist.entities.clear();
    }
    mergeHistory(view);
    const span = hist.t.length > 1 ? (hist.t[hist.t.length - 1] - hist.t[0]) / 1000 : 0;
    $('history-span').textContent =
      `${hist.t.length} of ${hist.capacity} samples every ${hist.interval / 1000}s, ${age(span * 1000)} shown`;
  }

  function series(key, name) {
    return hist.entities.get(key)?.[name] ?? hist.t.map(() => null);
  }

  /** What each chart draws for one service: [label, key, series name][]. */
  function chartLines(svc, chart) {
    const backends = svc.backends.map((b) => [b.address, `b\n${svc.name}\n${b.address}`]);
    const all = `s\n${svc.name}`;
    if (chart === 'bytes')
      return [
        ['in (client → backend)', all, 'bytesIn'],
        ['out (backend → client)', all, 'bytesOut'],
      ];
    if (chart === 'connect') return backends.map(([label, key]) => [label, key, 'connectMs']);
    const name = chart === 'sessions' ? 'sessions' : 'newSessions';
    return [['all backends', all, name], ...backends.map(([label, key]) => [label, key, name])];
  }

  const CHARTS = [
    ['sessions', 'Sessions', (v) => (Number.isInteger(v) ? intFmt.format(v) : v.toFixed(1))],
    ['new', 'New sessions/s', (v) => rate(v)],
    ['bytes', 'Bytes/s', (v) => rate(v, 'B')],
    ['connect', 'Connect time (ms)', (v) => (v < 10 ? v.toFixed(2) : v.toFixed(0))],
  ];

  function chartWidth(node) {
    return Math.max(240, Math.floor(node.clientWidth || 300));
  }

  function renderCharts(services) {
    if (typeof uPlot !== 'function') return;
    const t = hist.t.map((ms) => ms / 1000);
    for (const svc of services) {
      const s = sections.get(svc.name);
      if (!s) continue;
      for (const [id, title, fmt] of CHARTS) {
        const lines = chartLines(svc, id);
        const signature = lines.map((l) => l[0]).join('\n');
        let p = s.plots.get(id);
        if (!p) {
          const box = el('div', { class: 'chart', 'data-chart': id, 'data-service': svc.name });
          const note = el('div', { class: 'chart-note muted' });
          box.append(note);
          s.charts.append(box);
          p = { box, note, plot: null, signature: null };
          s.plots.set(id, p);
        }
        const data = [t, ...lines.map(([, key, name]) => series(key, name))];
        if (p.plot && p.signature !== signature) {
          p.plot.destroy();
          p.plot = null;
        }
        if (!p.plot) {
          p.signature = signature;
          p.plot = new uPlot(
            {
              title,
              width: chartWidth(p.box),
              height: 150,
              scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, max > 0 ? max * 1.1 : 1] } },
              legend: { live: false },
              cursor: { drag: { x: false, y: false } },
              axes: [
                { size: 30, font: '11px system-ui' },
                {
                  size: 64,
                  font: '11px system-ui',
                  // Sessions are whole: no 0.5 ticks.
                  values: (_u, ticks) =>
                    ticks.map((v) => (id === 'sessions' && !Number.isInteger(v) ? '' : fmt(v))),
                },
              ],
              series: [
                {},
                ...lines.map(([label], i) => ({
                  label,
                  stroke: PALETTE[i % PALETTE.length],
                  width: i === 0 && id !== 'connect' && id !== 'bytes' ? 2 : 1.25,
                  points: { size: 4 },
                  value: (_u, v) => (v === null || v === undefined ? '–' : fmt(v)),
                })),
              ],
            },
            data,
            p.box,
          );
        } else {
          p.plot.setData(data);
        }
        const points = data.slice(1).reduce((n, d) => n + d.filter((v) => v !== null).length, 0);
        p.box.dataset.points = String(points);
        p.box.dataset.samples = String(t.length);
        p.note.textContent =
          id === 'connect' && !hist.connectTimes ? 'Enable the metrics plugin to chart connect times.' : '';
      }
    }
  }

  window.addEventListener('resize', () => {
    for (const s of sections.values())
      for (const p of s.plots.values()) if (p.plot) p.plot.setSize({ width: chartWidth(p.box), height: 150 });
  });

  // ---- timeline ----------------------------------------------------------------------------

  function renderTimeline(entries, now) {
    const list = $('timeline');
    if (entries.length === 0) {
      list.replaceChildren(el('li', { class: 'muted empty' }, 'No transitions since start.'));
      return;
    }
    list.replaceChildren(
      ...entries.map((e) => {
        const t =
          e.source === 'registry' ? registryTone(e.status) : e.status === '' ? 'other' : tone(e.status);
        const what = e.status === '' ? 'withdrawn' : e.status;
        return el(
          'li',
          { 'data-source': e.source, 'data-status': e.status, 'data-backend': e.backend, 'data-tone': t },
          el(
            'time',
            { datetime: new Date(e.at).toISOString(), title: new Date(e.at).toISOString() },
            clock(e.at),
          ),
          ' ',
          el('span', { class: 'ago muted' }, `${age(now - e.at)} ago`),
          ' ',
          el('strong', null, e.backend),
          ' ',
          el('span', { class: 'muted' }, e.service),
          ' ',
          el(
            'span',
            { class: 'badge', 'data-tone': t },
            `${e.source}: ${e.previous !== null && e.previous !== '' ? `${e.previous} → ` : ''}${what}`,
          ),
          e.detail ? el('span', { class: 'detail muted' }, ` ${e.detail}`) : null,
        );
      }),
    );
  }

  function registryTone(status) {
    if (status === 'up' || status === 'added') return 'good';
    if (status === 'removed') return 'bad';
    return 'warn';
  }

  // ---- topology ----------------------------------------------------------------------------

  function node(kind, attrs, ...children) {
    return el('div', { class: `node ${kind}`, 'data-kind': kind, ...attrs }, ...children);
  }

  function chip(text, attrs) {
    return el('span', { class: 'chip', ...attrs }, text);
  }

  function topologyRow(svc, routedFrom) {
    const topo = svc.topology || { listen: svc.listen, routes: [], proxyProtocol: [], plugins: [] };
    const entry = el('div', { class: 'topo-col' });
    if (svc.listen.length > 0) {
      for (const address of svc.listen)
        entry.append(
          node(
            'listener',
            { 'data-address': address },
            address,
            topo.tls ? chip('TLS', { 'data-chip': 'tls' }) : null,
            topo.proxyProtocol.includes('accept')
              ? chip('PROXY accept', { 'data-chip': 'proxy-accept' })
              : null,
          ),
        );
    } else {
      for (const r of routedFrom)
        entry.append(node('route', { 'data-from': r.from, 'data-match': r.match }, `${r.from}: ${r.match}`));
      if (routedFrom.length === 0) entry.append(node('route', { 'data-from': '' }, 'no route leads here'));
    }
    const service = node(
      'service',
      { 'data-service': svc.name },
      el('strong', null, svc.name),
      topo.balancer ? chip(topo.balancer, { 'data-chip': 'balancer' }) : null,
      ...topo.proxyProtocol
        .filter((p) => p !== 'accept')
        .map((p) => chip(`PROXY ${p}`, { 'data-chip': 'proxy-send' })),
      ...topo.routes.map((r) =>
        el('div', { class: 'route-out', 'data-route': r.service }, `${r.match} → ${r.service}`),
      ),
    );
    const backends = el('div', { class: 'topo-col' });
    for (const b of svc.backends)
      backends.append(
        node(
          'backend',
          {
            'data-address': b.address,
            'data-tone': rowTone(b),
            'data-condition': b.condition ? b.condition.state : b.state,
          },
          b.address,
          ' ',
          chip(conditionText(b), { 'data-chip': 'condition' }),
          b.origin ? chip(b.origin, { 'data-chip': 'origin' }) : null,
        ),
      );
    if (svc.backends.length === 0 && topo.routes.length === 0)
      backends.append(el('div', { class: 'muted' }, 'no backends'));
    return el(
      'div',
      { class: 'topo-row', 'data-service': svc.name },
      entry,
      el('div', { class: 'arrow', 'aria-hidden': 'true' }, '→'),
      el('div', { class: 'topo-col' }, service),
      el('div', { class: 'arrow', 'aria-hidden': 'true' }, svc.backends.length > 0 ? '→' : ''),
      backends,
    );
  }

  function renderTopology(state) {
    const routedFrom = new Map();
    for (const svc of state.services)
      for (const r of svc.topology?.routes ?? []) {
        const list = routedFrom.get(r.service) ?? [];
        list.push({ from: svc.name, match: r.match });
        routedFrom.set(r.service, list);
      }
    $('topology').replaceChildren(
      ...state.services.map((svc) => topologyRow(svc, routedFrom.get(svc.name) ?? [])),
    );
  }

  function renderForce(force) {
    const box = $('force');
    if (force === null) {
      box.hidden = true;
      return;
    }
    box.hidden = false;
    const enabled = force.enabled === true;
    $('force-state').textContent = enabled ? 'ON (new connections refused)' : 'off';
    $('force-state').dataset.tone = enabled ? 'bad' : 'good';
    const parts = [];
    if (force.since) parts.push(`since ${clock(Date.parse(force.since))}`);
    if (enabled && typeof force.closed === 'number')
      parts.push(`${int(force.closed)} sessions closed when switched on`);
    $('force-detail').textContent = parts.length > 0 ? `(${parts.join(', ')})` : '';
    $('force-on').dataset.inactive = enabled ? 'yes' : 'no';
    $('force-off').dataset.inactive = enabled ? 'no' : 'yes';
  }

  function freshness(ok, detail) {
    const f = $('freshness');
    f.dataset.fresh = ok ? 'yes' : 'no';
    f.textContent = ok ? `live · updated ${clock(Date.now())}` : `not updating: ${detail}`;
  }

  // ---- polling -----------------------------------------------------------------------------

  async function poll() {
    if (polling) {
      pollAgain = true;
      return;
    }
    polling = true;
    pollAgain = false;
    clearTimeout(timer);
    try {
      const state = await api('GET', STATE_URL);
      if (typeof state.refresh === 'number' && state.refresh >= 250) refresh = state.refresh;
      renderForce(state.forceDisconnect ?? null);
      render(state);
      await pollHistory();
      renderCharts(state.services);
      freshness(true);
    } catch (err) {
      if (err.status === 401) {
        readNeedsToken = true;
        showTokenState();
      }
      freshness(false, err.message);
    } finally {
      polling = false;
      timer = setTimeout(poll, pollAgain ? 0 : refresh);
    }
  }

  // ---- actions -----------------------------------------------------------------------------

  function backendUrl(service, address) {
    return `/backends/${encodeURIComponent(address)}?service=${encodeURIComponent(service)}`;
  }

  async function act(button, method, url, body) {
    button.disabled = true;
    try {
      await api(method, url, body);
    } catch (err) {
      showError(err.message);
    } finally {
      button.disabled = false;
      poll();
    }
  }

  function onBackendAction(event) {
    const button = event.target.closest('button[data-action]');
    if (!button) return;
    const { action, service, address } = button.dataset;
    const url = backendUrl(service, address);
    if (action === 'drain' || action === 'undrain') {
      act(button, 'PATCH', url, { drain: action === 'drain' });
    } else if (action === 'remove') {
      if (window.confirm(`Remove backend ${address} from service ${service}? Its open sessions may finish.`))
        act(button, 'DELETE', url);
    } else if (action === 'weight') {
      const answer = window.prompt(`New weight for ${address} (1 to 256)`, button.dataset.weight);
      if (answer === null) return;
      const weight = Number(answer.trim());
      if (!Number.isInteger(weight) || weight < 1 || weight > 256) {
        showError(`weight must be an integer from 1 to 256, not "${answer}"`);
        return;
      }
      act(button, 'PATCH', url, { weight });
    }
  }

  function start() {
    $('token-form').addEventListener('submit', (event) => {
      event.preventDefault();
      const input = $('token');
      const value = input.value.trim();
      input.value = '';
      setToken(value);
      poll();
    });
    $('token-forget').addEventListener('click', () => {
      setToken('');
      poll();
    });
    $('force-on').addEventListener('click', (e) =>
      act(e.currentTarget, 'POST', FORCE_URL, { enabled: true }),
    );
    $('force-off').addEventListener('click', (e) =>
      act(e.currentTarget, 'POST', FORCE_URL, { enabled: false }),
    );
    $('services').addEventListener('click', onBackendAction);
    showTokenState();
    poll();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
