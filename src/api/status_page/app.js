// patrol status page: reads the daemon's JSON endpoints once, then follows /api/v1/events and
// updates the page in place. No framework and no innerHTML: every piece of data enters the page
// as text (textContent, createTextNode) or as a number in an SVG attribute.
'use strict';

(() => {
  // How many recent results each sparkline shows.
  const POINTS = 30;
  // A score that drifts slowly (a penalty growing with the minutes failing) moves too little per
  // evaluation to be announced: scores are read again shortly after results arrive (at most this
  // often) and, with alerts and silences, on a fixed period (a silence made with the CLI writes
  // the store directly and has no event). Alert phase changes and silences made or ended over
  // the API come as `alert` and `silence` events and are read again within ALERTS_THROTTLE_MS.
  const REFRESH_THROTTLE_MS = 2000;
  const ALERTS_THROTTLE_MS = 200;
  const REFRESH_PERIOD_MS = 30000;
  const SVG_NS = 'http://www.w3.org/2000/svg';
  const SPARK_W = 140;
  const SPARK_H = 30;
  const STATUS_ORDER = ['skipped', 'ok', 'warn', 'crit', 'error'];

  // What the page knows; the tables are drawn from it.
  const model = {
    status: null,
    checks: new Map(), // name -> check view of /api/v1/checks (with .latest as a Map series -> result)
    series: new Map(), // seriesKey(check, series) -> { check, series, unit, points: [] }
    scores: new Map(), // service -> score record
    alerts: [],
    silences: [],
  };

  // Read by tests and curious people: when the page loaded and how many events it applied.
  const live = { loadedAt: Date.now(), events: 0, lastEvent: null };
  window.patrolStatusPage = live;

  // ---------- small DOM helpers ----------

  function byId(id) {
    return document.getElementById(id);
  }

  // An element with attributes and children (strings become text nodes, never markup).
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    setAttributes(node, attrs);
    append(node, children);
    return node;
  }

  function svgEl(tag, attrs, ...children) {
    const node = document.createElementNS(SVG_NS, tag);
    setAttributes(node, attrs);
    append(node, children);
    return node;
  }

  function setAttributes(node, attrs) {
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value !== undefined && value !== null && value !== false) {
        node.setAttribute(name, String(value));
      }
    }
  }

  function append(node, children) {
    for (const child of children.flat()) {
      if (child === null || child === undefined) continue;
      node.appendChild(typeof child === 'string' ? document.createTextNode(child) : child);
    }
  }

  // ---------- formatting ----------

  function formatNumber(n) {
    if (n === null || n === undefined || !Number.isFinite(n)) return '–';
    if (Number.isInteger(n) && Math.abs(n) < 1e15) return String(n);
    const abs = Math.abs(n);
    const digits = abs >= 100 ? 1 : abs >= 1 ? 2 : 3;
    return String(Number(n.toFixed(digits)));
  }

  function valueText(value, unit) {
    if (value === null || value === undefined) return '–';
    const text = typeof value === 'number' ? formatNumber(value) : String(value);
    return unit ? text + ' ' + unit : text;
  }

  // A <time> with the local clock time (and the date when not today); the full time as tooltip.
  function timeEl(iso) {
    if (!iso) return document.createTextNode('–');
    const at = new Date(iso);
    if (Number.isNaN(at.getTime())) return document.createTextNode(String(iso));
    const today = new Date().toDateString() === at.toDateString();
    const clock = at.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
    const text = today ? clock : at.toLocaleDateString() + ' ' + clock;
    return el('time', { datetime: at.toISOString(), title: at.toString() }, text);
  }

  function statusBadge(status) {
    const known = STATUS_ORDER.includes(status) ? status : 'none';
    return el('span', { class: 'badge status-' + known }, status || 'no result yet');
  }

  function scoreClass(score) {
    if (!Number.isFinite(score)) return 'score-none';
    if (score >= 90) return 'score-good';
    if (score >= 70) return 'score-fair';
    return 'score-poor';
  }

  function worst(statuses) {
    let best = null;
    for (const s of statuses) {
      if (s && (best === null || STATUS_ORDER.indexOf(s) > STATUS_ORDER.indexOf(best))) best = s;
    }
    return best;
  }

  function seriesKey(check, series) {
    return check + '\u0000' + (series || '');
  }

  // ---------- fetching ----------

  async function getJson(path) {
    const response = await fetch(path, { headers: { accept: 'application/json' }, cache: 'no-store' });
    if (!response.ok) {
      let reason = response.statusText;
      try {
        reason = (await response.json()).error || reason;
      } catch (_) {
        // not JSON: keep the status text
      }
      throw new Error(path + ': ' + response.status + ' ' + reason);
    }
    return response.json();
  }

  function showLoadError(error) {
    const box = byId('load-error');
    if (error) {
      box.textContent = 'Could not read the daemon: ' + error.message;
      box.hidden = false;
    } else {
      box.hidden = true;
      box.textContent = '';
    }
  }

  async function loadStatus() {
    model.status = await getJson('/api/v1/status');
    renderStatus();
  }

  async function loadChecks() {
    const [checks, series] = await Promise.all([
      getJson('/api/v1/checks'),
      getJson('/api/v1/series?limit=' + POINTS),
    ]);
    model.checks = new Map();
    for (const check of checks.checks) {
      const latest = new Map();
      for (const r of check.latest || []) latest.set(r.series || '', r);
      model.checks.set(check.name, { ...check, latest });
    }
    model.series = new Map();
    for (const s of series.series) model.series.set(seriesKey(s.check, s.series), s);
    renderChecks();
    renderServices();
  }

  async function loadScores() {
    const scores = await getJson('/api/v1/scores');
    model.scores = new Map(scores.scores.map((s) => [s.service, s]));
    renderServices();
  }

  async function loadAlertsAndSilences() {
    const [alerts, silences] = await Promise.all([
      getJson('/api/v1/alerts'),
      getJson('/api/v1/silences?active=true'),
    ]);
    model.alerts = alerts.alerts.map((a) => a.state).filter((s) => s && s.phase !== 'inactive');
    model.silences = silences.silences;
    renderAlerts();
    renderSilences();
  }

  // Runs `load` and shows (or clears) a failure instead of throwing.
  async function attempt(load) {
    try {
      await load();
      showLoadError(null);
    } catch (error) {
      showLoadError(error);
    }
  }

  // Everything read on the fixed period: alerts, silences, scores.
  async function loadUnannounced() {
    await Promise.all([loadAlertsAndSilences(), loadScores()]);
  }

  let refreshTimer = null;
  function refreshSoon() {
    if (refreshTimer !== null) return;
    refreshTimer = setTimeout(() => {
      refreshTimer = null;
      attempt(loadScores);
    }, REFRESH_THROTTLE_MS);
  }

  // A burst of alert events (a run failing many series at once) reads the lists once.
  let alertsTimer = null;
  function reloadAlertsSoon() {
    if (alertsTimer !== null) return;
    alertsTimer = setTimeout(() => {
      alertsTimer = null;
      attempt(loadAlertsAndSilences);
    }, ALERTS_THROTTLE_MS);
  }

  let checksTimer = null;
  function reloadChecksSoon() {
    if (checksTimer !== null) return;
    checksTimer = setTimeout(() => {
      checksTimer = null;
      attempt(loadChecks);
    }, REFRESH_THROTTLE_MS);
  }

  // ---------- header, reload error, footer ----------

  function renderStatus() {
    const s = model.status;
    if (!s) return;
    const revision = byId('revision');
    revision.textContent = s.revision ? s.revision.slice(0, 12) : '–';
    revision.title = s.revision || '';
    byId('loaded-at').replaceChildren(timeEl(s.loaded_at));
    byId('reloads').textContent = s.reloads + (s.reload_failures ? ' (' + s.reload_failures + ' refused)' : '');
    renderReloadError(s.last_reload_error);
    byId('footer-version').textContent = 'patrol ' + (s.version || '');
    byId('footer-store').textContent = s.store ? 'store: ' + s.store : '';
    const c = s.counts || {};
    byId('footer-counts').textContent =
      (c.checks ?? 0) + ' checks (' + (c.scheduled_checks ?? 0) + ' scheduled, ' + (c.shadow_checks ?? 0) +
      ' shadow), ' + (c.suites ?? 0) + ' suites, ' + (c.files ?? 0) + ' rule files';
  }

  function renderReloadError(failure) {
    const section = byId('reload-error');
    if (!failure) {
      section.hidden = true;
      byId('reload-problems').replaceChildren();
      return;
    }
    byId('reload-error-at').replaceChildren('Refused at ', timeEl(failure.at), '.');
    byId('reload-problems').replaceChildren(
      ...(failure.problems || []).map((p) =>
        el('li', null,
          el('code', { class: 'where' }, p.file + ':' + p.line + ':' + p.column),
          ' ',
          p.message)),
    );
    section.hidden = false;
  }

  function setConnection(state, text) {
    const node = byId('connection');
    node.className = 'conn conn-' + state;
    node.textContent = text;
  }

  // ---------- services ----------

  function renderServices() {
    const overall = model.scores.get('_overall');
    const overallNode = byId('overall');
    const value = overall ? formatNumber(overall.score) : '–';
    overallNode.replaceChildren('overall score ',
      el('span', { class: 'score-value ' + scoreClass(overall && overall.score) }, value));

    const names = new Set();
    for (const name of model.scores.keys()) if (name !== '_overall') names.add(name);
    for (const check of model.checks.values()) if (check.service) names.add(check.service);
    const rows = [...names].sort().map(serviceRow);
    byId('services-body').replaceChildren(...rows);
    byId('services-empty').hidden = rows.length > 0;
  }

  function serviceRow(name) {
    const score = model.scores.get(name);
    const checks = [...model.checks.values()].filter((c) => c.service === name);
    const failing = checks.filter((c) => ['crit', 'error'].includes(checkStatus(c))).length;
    const status = worst(checks.map(checkStatus));
    const scoreText = score ? formatNumber(score.score) : 'no score';
    const meter = score
      ? el('span', { class: 'meter', 'aria-hidden': 'true' },
        el('span', { class: 'meter-fill ' + scoreClass(score.score) }))
      : null;
    if (meter) meter.firstChild.style.width = Math.max(0, Math.min(100, score.score)) + '%';
    return el('tr', { 'data-service': name },
      el('th', { scope: 'row' }, name),
      el('td', { class: 'score' },
        el('span', { class: 'score-number ' + scoreClass(score && score.score) }, scoreText), meter),
      el('td', null, checks.length + (failing ? ' (' + failing + ' failing)' : '')),
      el('td', null, statusBadge(status)));
  }

  // ---------- checks ----------

  function checkStatus(check) {
    const statuses = [...check.latest.values()].map((r) => r.status);
    if (statuses.length) return worst(statuses);
    return check.state ? check.state.status : null;
  }

  function renderChecks() {
    const rows = [...model.checks.values()]
      .sort((a, b) => a.name.localeCompare(b.name))
      .map(checkRow);
    byId('checks-body').replaceChildren(...rows);
    byId('checks-empty').hidden = rows.length > 0;
  }

  function updateCheckRow(check) {
    const old = document.querySelector('#checks-body tr[data-check="' + CSS.escape(check.name) + '"]');
    const row = checkRow(check);
    if (old) old.replaceWith(row);
    else renderChecks();
  }

  function checkRow(check) {
    const latest = [...check.latest.values()];
    const status = checkStatus(check);
    const newest = latest.reduce((a, r) => (!a || r.started_at > a.started_at ? r : a), null);
    const failing = check.state && check.state.failing_since;
    const name = el('th', { scope: 'row' },
      el('span', { class: 'check-name' }, check.name),
      el('span', { class: 'sub' }, check.kind + (check.mode === 'shadow' ? ' · shadow' : '') +
        (check.every ? ' · every ' + check.every : check.schedule ? ' · ' + check.schedule : '')));
    if (check.description) name.title = check.description;
    const statusCell = el('td', { class: 'status' }, statusBadge(status));
    if (failing && ['crit', 'error'].includes(status)) {
      statusCell.append(el('span', { class: 'sub' }, 'since ', timeEl(failing)));
    }
    return el('tr', { 'data-check': check.name, 'data-status': status || 'none' },
      name,
      el('td', null, check.service || '–'),
      statusCell,
      el('td', { class: 'value' }, checkValue(check, latest)),
      el('td', { class: 'trend' }, trendCell(check, latest)),
      el('td', null, newest ? timeEl(newest.started_at) : '–'),
      el('td', { class: 'message' }, messageOf(latest)));
  }

  function checkValue(check, latest) {
    if (latest.length === 1) return valueText(latest[0].value, latest[0].unit);
    if (latest.length > 1) {
      const mean = check.state && check.state.value;
      return (Number.isFinite(mean) ? 'mean ' + valueText(mean, latest[0].unit) + ', ' : '') +
        latest.length + ' series';
    }
    return '–';
  }

  // The message of the worst series (the one a person wants to read first).
  function messageOf(latest) {
    const sorted = [...latest].sort(
      (a, b) => STATUS_ORDER.indexOf(b.status) - STATUS_ORDER.indexOf(a.status));
    const top = sorted[0];
    if (!top || !top.message) return '';
    const prefix = latest.length > 1 && top.series ? top.series + ': ' : '';
    return prefix + top.message;
  }

  const MAX_SPARKLINES = 3;

  function trendCell(check, latest) {
    const keys = latest.length ? latest.map((r) => r.series || '') : [''];
    const charts = [];
    for (const series of keys.sort().slice(0, MAX_SPARKLINES)) {
      const s = model.series.get(seriesKey(check.name, series));
      if (!s || !s.points.length) continue;
      const chart = el('div', { class: 'spark' }, sparkline(check.name, s));
      if (keys.length > 1) chart.append(el('span', { class: 'sub' }, series || '(single)'));
      charts.push(chart);
    }
    if (keys.length > MAX_SPARKLINES) {
      charts.push(el('span', { class: 'sub' }, '+' + (keys.length - MAX_SPARKLINES) + ' more series'));
    }
    return charts.length ? charts : '–';
  }

  // An inline SVG: the shaded baseline band, the line of values, a dot per bad result, a marker
  // for the newest point. x is the point's index (evenly spaced), y the value.
  function sparkline(checkName, s) {
    const points = s.points;
    const numbers = [];
    for (const p of points) {
      for (const v of [p.value, p.lower, p.upper]) if (Number.isFinite(v)) numbers.push(v);
    }
    const last = points[points.length - 1];
    const label = 'Trend of ' + checkName + (s.series ? ' ' + s.series : '') + ': ' + points.length +
      ' results, latest ' + valueText(last.value, s.unit) + ' (' + last.status + ')' +
      (Number.isFinite(last.lower) && Number.isFinite(last.upper)
        ? ', band ' + formatNumber(last.lower) + ' to ' + formatNumber(last.upper) : '');
    const svg = svgEl('svg', {
      class: 'sparkline', width: SPARK_W, height: SPARK_H,
      viewBox: '0 0 ' + SPARK_W + ' ' + SPARK_H, role: 'img', 'aria-label': label,
    }, svgEl('title', null, label));
    if (!numbers.length) {
      svg.append(svgEl('line', { class: 'spark-none', x1: 2, x2: SPARK_W - 2, y1: SPARK_H - 3, y2: SPARK_H - 3 }));
      markBad(svg, points, () => SPARK_H - 3);
      return svg;
    }
    let lo = Math.min(...numbers);
    let hi = Math.max(...numbers);
    if (hi === lo) {
      hi += Math.abs(hi) * 0.1 || 1;
      lo -= Math.abs(lo) * 0.1 || 1;
    }
    const pad = 3;
    const x = (i) => points.length === 1 ? SPARK_W / 2
      : pad + (i * (SPARK_W - 2 * pad)) / (points.length - 1);
    const y = (v) => SPARK_H - pad - ((v - lo) * (SPARK_H - 2 * pad)) / (hi - lo);
    for (const band of bandRuns(points)) {
      const top = band.map((i) => x(i).toFixed(1) + ',' + y(points[i].upper).toFixed(1));
      const bottom = band.slice().reverse().map((i) => x(i).toFixed(1) + ',' + y(points[i].lower).toFixed(1));
      if (band.length === 1) {
        svg.append(svgEl('line', {
          class: 'spark-band-edge', x1: x(band[0]), x2: x(band[0]),
          y1: y(points[band[0]].upper), y2: y(points[band[0]].lower),
        }));
      } else {
        svg.append(svgEl('polygon', { class: 'spark-band', points: top.concat(bottom).join(' ') }));
      }
    }
    let path = '';
    let drawing = false;
    points.forEach((p, i) => {
      if (!Number.isFinite(p.value)) {
        drawing = false;
        return;
      }
      path += (drawing ? 'L' : 'M') + x(i).toFixed(1) + ' ' + y(p.value).toFixed(1) + ' ';
      drawing = true;
    });
    if (path) svg.append(svgEl('path', { class: 'spark-line', d: path.trim() }));
    markBad(svg, points, (p) => (Number.isFinite(p.value) ? y(p.value) : SPARK_H - pad), x);
    if (Number.isFinite(last.value)) {
      svg.append(svgEl('circle', {
        class: 'spark-last status-' + last.status, cx: x(points.length - 1), cy: y(last.value), r: 2.5,
      }));
    }
    return svg;
  }

  // Indexes of consecutive points that have a full band, as runs.
  function bandRuns(points) {
    const runs = [];
    let run = [];
    points.forEach((p, i) => {
      if (Number.isFinite(p.lower) && Number.isFinite(p.upper)) {
        run.push(i);
      } else if (run.length) {
        runs.push(run);
        run = [];
      }
    });
    if (run.length) runs.push(run);
    return runs;
  }

  function markBad(svg, points, yOf, xOf) {
    const x = xOf || ((i) => 2 + (i * (SPARK_W - 4)) / Math.max(1, points.length - 1));
    points.forEach((p, i) => {
      if (['warn', 'crit', 'error'].includes(p.status)) {
        svg.append(svgEl('circle', { class: 'spark-bad status-' + p.status, cx: x(i), cy: yOf(p), r: 1.8 }));
      }
    });
  }

  // ---------- alerts and silences ----------

  // A silence matcher as the API spells it: name, operator, quoted value.
  function parseMatcher(text) {
    const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*$/.exec(text);
    if (!m) return null;
    return { name: m[1], op: m[2], value: m[3].replace(/\\(.)/g, '$1') };
  }

  function matcherHolds(matcher, labels) {
    const actual = labels[matcher.name] ?? '';
    switch (matcher.op) {
      case '=': return actual === matcher.value;
      case '!=': return actual !== matcher.value;
      default: {
        let re;
        try {
          re = new RegExp('^(?:' + matcher.value + ')$');
        } catch (_) {
          return false;
        }
        return matcher.op === '=~' ? re.test(actual) : !re.test(actual);
      }
    }
  }

  function isSilenced(labels) {
    return model.silences.some((s) => {
      if (s.state !== 'active') return false;
      const matchers = (s.matchers || []).map(parseMatcher);
      return matchers.length > 0 && matchers.every((m) => m && matcherHolds(m, labels));
    });
  }

  function renderAlerts() {
    const rank = (a) => (a.phase === 'firing' ? 0 : 1);
    const alerts = [...model.alerts].sort((a, b) => rank(a) - rank(b) ||
      String(a.labels.alertname).localeCompare(String(b.labels.alertname)));
    const rows = alerts.map((a) => {
      const labels = a.labels || {};
      const silenced = isSilenced(labels);
      const state = el('td', { class: 'state' },
        el('span', { class: 'badge phase-' + a.phase }, a.phase));
      if (silenced) state.append(' ', el('span', { class: 'badge phase-silenced' }, 'silenced'));
      if (a.flapping) state.append(' ', el('span', { class: 'badge phase-flapping' }, 'flapping'));
      const annotations = a.annotations || {};
      return el('tr', { 'data-alert': labels.alertname || a.fingerprint, 'data-phase': a.phase },
        el('th', { scope: 'row' }, labels.alertname || a.fingerprint),
        el('td', null, labels.service || '–'),
        state,
        el('td', null, timeEl(a.phase === 'firing' ? a.starts_at || a.since : a.since)),
        el('td', { class: 'message' }, annotations.summary || annotations.description ||
          ('last ' + (a.last_status || '?') + (a.last_value !== null && a.last_value !== undefined
            ? ', ' + valueText(a.last_value) : ''))));
    });
    byId('alerts-body').replaceChildren(...rows);
    byId('alerts-empty').hidden = rows.length > 0;
  }

  function renderSilences() {
    const rows = model.silences.map((s) =>
      el('tr', { 'data-silence': s.id },
        el('td', null, ...(s.matchers || []).map((m) => el('code', { class: 'matcher' }, String(m)))),
        el('td', null, el('span', { class: 'badge silence-' + s.state }, s.state)),
        el('td', null, timeEl(s.state === 'pending' ? s.starts_at : s.ends_at)),
        el('td', null, s.created_by || '–'),
        el('td', { class: 'message' }, s.comment || '')));
    byId('silences-body').replaceChildren(...rows);
    byId('silences-empty').hidden = rows.length > 0;
  }

  // ---------- live events ----------

  function onResult(result) {
    const check = model.checks.get(result.check);
    if (!check) {
      // A check this page does not know yet (added by a reload it has not seen): read them all.
      reloadChecksSoon();
      return;
    }
    const current = [...check.latest.values()][0];
    const at = Date.parse(result.started_at);
    if (current && current.run_id !== result.run_id) {
      // An older run's result (replayed after the first answers) changes only the trend.
      if (at < Date.parse(current.started_at)) {
        addPoint(result);
        updateCheckRow(check);
        return;
      }
      // The results of a run arrive one per series; a newer run starts a new set.
      check.latest = new Map();
    }
    check.latest.set(result.series || '', result);
    const status = checkStatus(check);
    const failingSince = (check.state && check.state.failing_since) || result.started_at;
    check.state = {
      ...(check.state || {}),
      status,
      failing_since: ['crit', 'error'].includes(status) ? failingSince : null,
    };
    addPoint(result);
    updateCheckRow(check);
    renderServices();
    refreshSoon();
  }

  function addPoint(r) {
    const key = seriesKey(r.check, r.series);
    let s = model.series.get(key);
    if (!s) {
      s = { check: r.check, series: r.series || '', unit: r.unit, points: [] };
      model.series.set(key, s);
    }
    // A result already read with the first answers comes again as an event: keep it once.
    const at = Date.parse(r.started_at);
    if (s.points.some((p) => Date.parse(p.at) === at)) return;
    const band = r.baseline || {};
    const value = typeof r.value === 'number' ? r.value : Number.parseFloat(r.value);
    s.points.push({
      at: r.started_at,
      value: Number.isFinite(value) ? value : null,
      status: r.status,
      lower: band.lower ?? null,
      upper: band.upper ?? null,
      mean: band.mean ?? null,
    });
    s.points.sort((a, b) => Date.parse(a.at) - Date.parse(b.at));
    if (s.points.length > POINTS) s.points.splice(0, s.points.length - POINTS);
  }

  function onScore(score) {
    model.scores.set(score.service, { ...(model.scores.get(score.service) || {}), ...score });
    renderServices();
  }

  function onReload(data) {
    // The status holds the revision and the last reload error; an applied reload may also have
    // changed the checks and services.
    attempt(loadStatus);
    if (data && data.applied) {
      attempt(loadChecks);
      attempt(loadScores);
    }
  }

  const HANDLERS = {
    result: onResult,
    score: onScore,
    score_low: () => refreshSoon(),
    alert: () => reloadAlertsSoon(),
    silence: () => reloadAlertsSoon(),
    reload: onReload,
  };

  // Events that arrive before the first answers are read wait here, then apply in order.
  let backlog = [];

  function apply(kind, data) {
    live.events += 1;
    live.lastEvent = kind;
    HANDLERS[kind](data);
  }

  function follow() {
    const events = new EventSource('/api/v1/events');
    events.onopen = () => setConnection('live', 'live');
    events.onerror = () => {
      // EventSource reconnects by itself and resumes with Last-Event-ID: nothing is missed.
      setConnection('lost', events.readyState === EventSource.CLOSED ? 'disconnected' : 'reconnecting…');
    };
    for (const kind of Object.keys(HANDLERS)) {
      events.addEventListener(kind, (message) => {
        let event;
        try {
          event = JSON.parse(message.data);
        } catch (_) {
          return;
        }
        if (backlog) backlog.push([kind, event.data]);
        else apply(kind, event.data);
      });
    }
    return events;
  }

  async function start() {
    // Subscribe first, so nothing that happens while the first answers are read is lost.
    follow();
    await Promise.all([attempt(loadStatus), attempt(loadChecks), attempt(loadUnannounced)]);
    const waiting = backlog;
    backlog = null;
    for (const [kind, data] of waiting) apply(kind, data);
    setInterval(() => attempt(loadUnannounced), REFRESH_PERIOD_MS);
    document.body.dataset.loaded = 'true';
  }

  start();
})();
