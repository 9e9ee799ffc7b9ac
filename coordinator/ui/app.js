/*
 * gpupool console: plain JavaScript, no framework, nothing fetched from
 * elsewhere.  Pages are routes of the URL's fragment (#/overview, #/nodes,
 * #/queue?state=..., #/job/<id>).  The API token is kept in sessionStorage
 * (this tab only) and sent as "Authorization: Bearer" on every fetch of
 * /ui/api/...; a 401 brings the login page back.
 *
 * Live updates: the current page's data is asked for every second with
 * If-None-Match; the coordinator answers 304 until its cache changes, so
 * an unchanged pool costs one empty answer a second.  A hidden tab asks
 * every 5 s.
 */
'use strict';
(function () {
  const TOKEN_KEY = 'gpupool-token';
  const THEME_KEY = 'gpupool-theme';
  const POLL_MS = 1000;
  const POLL_HIDDEN_MS = 5000;
  const STATES = ['active', 'pending', 'placed', 'running', 'suspended', 'succeeded', 'failed',
                  'cancelled', 'preempted', 'lost', 'ended', 'all'];

  const $ = (id) => document.getElementById(id);
  let current = null;   // {page, url, etag, render}
  let generation = 0;   // bumped at each route change: a stale poll stops
  let timer = null;

  function esc(v) {
    return String(v === undefined || v === null ? '' : v).replace(/[&<>"']/g, (ch) => ({
      '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[ch]));
  }
  const token = () => sessionStorage.getItem(TOKEN_KEY);
  const pct = (a, b) => (b > 0 ? Math.round((100 * a) / b) : 0);
  const gpus = (milli) => (milli / 1000).toFixed(milli % 1000 ? 2 : 0);
  function mib(m) {
    if (m === null || m === undefined) return '?';
    return m >= 1024 ? (m / 1024).toFixed(m % 1024 ? 1 : 0) + ' GiB' : m + ' MiB';
  }
  function age(ms) {
    if (!ms) return '';
    const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
    if (s < 60) return s + 's';
    if (s < 3600) return Math.floor(s / 60) + 'm';
    if (s < 86400) return Math.floor(s / 3600) + 'h';
    return Math.floor(s / 86400) + 'd';
  }
  const when = (ms) => (ms ? new Date(ms).toLocaleString() : '');
  const badge = (s) => '<span class="badge s-' + esc(s) + '">' + esc(s) + '</span>';
  function hue(s) {   // far-apart hues for neighbouring names (golden angle)
    let h = 2166136261;
    for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619) >>> 0;
    return Math.round(((h % 1000) * 137.508) % 360);
  }

  /* ------------------------------------------------------------ theme */
  function applyTheme() {
    const t = localStorage.getItem(THEME_KEY);
    if (t) document.documentElement.dataset.theme = t;
    else delete document.documentElement.dataset.theme;
    const dark = t ? t === 'dark' : window.matchMedia('(prefers-color-scheme: dark)').matches;
    $('theme').textContent = dark ? 'Light' : 'Dark';
    $('theme').setAttribute('aria-label', dark ? 'Switch to the light theme' : 'Switch to the dark theme');
  }
  function toggleTheme() {
    const dark = document.documentElement.dataset.theme
      ? document.documentElement.dataset.theme === 'dark'
      : window.matchMedia('(prefers-color-scheme: dark)').matches;
    localStorage.setItem(THEME_KEY, dark ? 'light' : 'dark');
    applyTheme();
  }

  /* ------------------------------------------------------------ login */
  function showLogin(message) {
    stopPolling();
    $('nav').hidden = true;
    $('logout').hidden = true;
    $('view').hidden = true;
    $('view').innerHTML = '';
    $('live').textContent = '';
    $('login').hidden = false;
    const err = $('login-error');
    err.hidden = !message;
    err.textContent = message || '';
    $('token').value = '';
    $('token').focus();
  }

  async function login(ev) {
    ev.preventDefault();
    const t = $('token').value.trim();
    if (!t) return;
    sessionStorage.setItem(TOKEN_KEY, t);
    let r;
    try {
      r = await fetch('api/overview', { headers: { Authorization: 'Bearer ' + t }, cache: 'no-store' });
    } catch (e) {
      sessionStorage.removeItem(TOKEN_KEY);
      showLogin('Cannot reach the coordinator: ' + e.message);
      return;
    }
    if (r.status === 401) {
      sessionStorage.removeItem(TOKEN_KEY);
      showLogin('This token was refused (401). Check it against the api-tokens file.');
      return;
    }
    route();
  }

  function signOut(message) {
    sessionStorage.removeItem(TOKEN_KEY);
    showLogin(message);
  }

  function showApp() {
    $('login').hidden = true;
    $('nav').hidden = false;
    $('logout').hidden = false;
    $('view').hidden = false;
  }

  /* ------------------------------------------------------------ polling */
  function stopPolling() {
    generation++;
    if (timer) clearTimeout(timer);
    timer = null;
  }

  function setLive(text, stale) {
    const l = $('live');
    l.textContent = text;
    l.classList.toggle('stale', !!stale);
  }

  async function poll(gen) {
    if (gen !== generation || !current) return;
    const headers = { Authorization: 'Bearer ' + token() };
    if (current.etag) headers['If-None-Match'] = current.etag;
    try {
      const r = await fetch(current.url, { headers, cache: 'no-store' });
      if (gen !== generation) return;
      if (r.status === 401) {
        signOut('The coordinator refused the token (401): sign in again.');
        return;
      }
      if (r.status === 200) {
        const data = await r.json();
        if (gen !== generation) return;
        current.etag = r.headers.get('ETag');
        current.render(data);
        setLive('live · updated ' + new Date().toLocaleTimeString());
      } else if (r.status === 304) {
        setLive('live · checked ' + new Date().toLocaleTimeString());
      } else {
        let msg = 'HTTP ' + r.status;
        try { msg += ': ' + (await r.json()).error; } catch (e) { /* not JSON */ }
        if (gen !== generation) return;
        current.error(r.status, msg);
        setLive(msg, true);
      }
    } catch (e) {
      if (gen !== generation) return;
      setLive('coordinator unreachable, retrying', true);
    }
    if (gen === generation)
      timer = setTimeout(() => poll(gen), document.hidden ? POLL_HIDDEN_MS : POLL_MS);
  }

  function startView(page, url, shell, render) {
    stopPolling();
    const gen = generation;
    const v = $('view');
    v.innerHTML = shell;
    const h1 = v.querySelector('h1');
    if (h1) h1.setAttribute('tabindex', '-1');
    for (const a of document.querySelectorAll('nav a'))
      if (a.dataset.page === page) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    current = {
      page, url, etag: null, render,
      error(status, msg) {
        const c = $('content');
        if (c && (status === 404 || !c.firstChild)) c.innerHTML = '<p class="error">' + esc(msg) + '</p>';
      },
    };
    poll(gen);
  }

  /* ------------------------------------------------------------ routes */
  function parseHash() {
    const h = location.hash.replace(/^#\/?/, '');
    const q = h.indexOf('?');
    const path = q < 0 ? h : h.slice(0, q);
    const params = new URLSearchParams(q < 0 ? '' : h.slice(q + 1));
    return { path, params };
  }

  function route() {
    if (!token()) { showLogin(); return; }
    showApp();
    const { path, params } = parseHash();
    const focusH1 = () => { const h = $('view').querySelector('h1'); if (h) h.focus({ preventScroll: true }); };
    if (path.startsWith('job/')) jobPage(decodeURIComponent(path.slice(4)));
    else if (path === 'nodes') nodesPage(params);
    else if (path === 'queue') queuePage(params);
    else overviewPage();
    if (document.activeElement === document.body || document.activeElement === $('main')) focusH1();
  }

  function setHash(path, params) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) if (v) q.set(k, v);
    const s = q.toString();
    location.hash = '#/' + path + (s ? '?' + s : '');
  }

  /* ------------------------------------------------------------ overview */
  function meter(alloc, busy, total, label) {
    const a = total > 0 ? Math.min(100, (100 * alloc) / total) : 0;
    const b = total > 0 ? Math.min(100, (100 * busy) / total) : 0;
    return '<svg class="meter" viewBox="0 0 100 10" preserveAspectRatio="none" role="img" aria-label="' +
      esc(label) + '"><rect class="track" x="0" y="0" width="100" height="10"/>' +
      '<rect class="alloc" x="0" y="0" width="' + a.toFixed(2) + '" height="6"/>' +
      '<rect class="busy" x="0" y="6" width="' + b.toFixed(2) + '" height="4"/></svg>';
  }

  function chart(h) {
    const s = h.samples || [];
    if (s.length < 2)
      return '<p class="muted">The history starts when the coordinator does: a sample every ' +
        esc(h.interval_s) + ' s, ' + s.length + ' so far.</p>';
    const W = 600, H = 150, t0 = s[0][0], t1 = s[s.length - 1][0];
    const x = (t) => (t1 > t0 ? ((t - t0) / (t1 - t0)) * W : 0);
    const y = (v, tot) => H + 2 - (tot > 0 ? (v / tot) * H : 0);
    const line = (k) => s.map((p) => x(p[0]).toFixed(1) + ',' + y(p[k], p[1]).toFixed(1)).join(' ');
    let grid = '';
    for (const g of [0, 25, 50, 75, 100])
      grid += '<line class="grid" x1="0" x2="' + W + '" y1="' + (H - (g * H) / 100 + 2) + '" y2="' + (H - (g * H) / 100 + 2) + '"/>';
    const mins = Math.max(1, Math.round((t1 - t0) / 60000));
    return '<svg class="chart" viewBox="0 0 ' + W + ' ' + (H + 4) + '" preserveAspectRatio="none" role="img" ' +
      'aria-label="Allocation and utilization over the last ' + mins + ' minutes">' + grid +
      '<polyline class="alloc" points="' + line(2) + '"/><polyline class="busy" points="' + line(3) + '"/></svg>' +
      '<div class="legend"><span><span class="key alloc"></span>allocated</span>' +
      '<span><span class="key busy"></span>really used (agents\' utilization)</span>' +
      '<span>lines at 0, 25, 50, 75 and 100% of the pool\'s GPUs; the last ' + mins + ' min (since ' +
      esc(new Date(t0).toLocaleTimeString()) + ')</span></div>';
  }

  function overviewPage() {
    startView('overview', 'api/overview', '<h1>Overview</h1><div id="content"></div>', (d) => {
      let nodes = 0, g = 0, alloc = 0, busy = 0, total = 0;
      for (const r of d.regions) { nodes += r.nodes; }
      for (const m of d.models) { g += m.gpus; alloc += m.milli_alloc; busy += m.milli_busy; total += m.milli_total; }
      const j = d.jobs;
      const running = j.running + j.placed + j.suspended;
      let html = '<div class="cards">' +
        card(nodes, 'nodes') + card(g, 'GPUs') +
        card(gpus(alloc) + ' <small>(' + pct(alloc, total) + '%)</small>', 'GPUs allocated', true) +
        card(gpus(busy) + ' <small>(' + pct(busy, total) + '%)</small>', 'GPUs really used', true) +
        card('<a href="#/queue?state=pending">' + j.pending + '</a>', 'jobs pending', true) +
        card('<a href="#/queue?state=active">' + running + '</a>', 'jobs placed or running', true) +
        '</div>';
      if (d.store.full) html += '<p class="error" role="alert">The store is full (etcd NOSPACE): submissions are refused.</p>';
      html += '<h2>Allocation and utilization</h2><div class="panel">' + chart(d.history) + '</div>';
      html += '<h2>Regions</h2><div class="panel scroll"><table><thead><tr><th>Region</th><th>Clouds</th>' +
        '<th>Leader</th><th class="hide-narrow">Coordinators</th><th class="num">Nodes</th><th class="num">GPUs</th>' +
        '<th class="num">Allocated</th><th class="num">Pending</th><th class="num">Running</th></tr></thead><tbody>';
      for (const r of d.regions)
        html += '<tr data-region="' + esc(r.name) + '"><td><a href="#/nodes?region=' + encodeURIComponent(r.name) + '">' +
          esc(r.name) + '</a></td><td>' + esc(r.clouds.join(', ')) + '</td><td>' +
          (r.leader ? esc(r.leader) : '<span class="error">none</span>') + '</td><td class="hide-narrow">' +
          esc(r.coordinators.join(', ')) + '</td><td class="num">' + r.nodes + '</td><td class="num">' + r.gpus +
          '</td><td class="num">' + pct(r.milli_alloc, r.gpus * 1000) + '%</td><td class="num">' + r.pending +
          '</td><td class="num">' + r.running + '</td></tr>';
      html += '</tbody></table></div>';
      html += '<h2>GPUs by model</h2><div class="panel scroll"><table><thead><tr><th>Model</th><th class="num">GPUs</th>' +
        '<th class="num">Allocated</th><th class="num">Used</th><th>Allocated / used</th><th class="num hide-narrow">Memory used</th>' +
        '</tr></thead><tbody>';
      for (const m of d.models)
        html += '<tr data-model="' + esc(m.model) + '"><td>' + esc(m.model) + '</td><td class="num">' + m.gpus +
          '</td><td class="num">' + gpus(m.milli_alloc) + '</td><td class="num">' + gpus(m.milli_busy) + '</td><td>' +
          meter(m.milli_alloc, m.milli_busy, m.milli_total, m.model + ': ' + pct(m.milli_alloc, m.milli_total) +
            '% allocated, ' + pct(m.milli_busy, m.milli_total) + '% used') +
          '</td><td class="num hide-narrow">' + mib(m.mem_used_mib) + ' / ' + mib(m.mem_total_mib) + '</td></tr>';
      html += '</tbody></table></div>';
      html += '<p class="muted">Served by ' + esc(d.coordinator.id) + ' (' + esc(d.coordinator.region) +
        (d.coordinator.leader ? ', leader' : ', standby') + ') at revision ' + d.revision + '.</p>';
      $('content').innerHTML = html;
    });
  }
  function card(n, label, raw) {
    return '<div class="card"><div class="n">' + (raw ? n : esc(n)) + '</div><div class="l">' + esc(label) + '</div></div>';
  }

  /* ------------------------------------------------------------ nodes */
  function gpuBar(dev, kind) {
    // kind "mem": the device's memory split into its slices (with what each
    // really uses, darker); "compute": its compute split likewise.
    const total = kind === 'mem' ? dev.mem_mib : 1000;
    let x = 0, out = '';
    for (const s of dev.slices) {
      const share = kind === 'mem' ? s.mem_mib : s.compute_permille;
      const w = total > 0 ? Math.min(100 - x, (100 * share) / total) : 0;
      const used = kind === 'mem' ? (s.used_mib || 0) : (s.compute_percent || 0) * 10;
      const uw = total > 0 ? Math.min(w, (100 * used) / total) : 0;
      out += '<g data-slice-job="' + esc(s.job) + '"' + (s.used_mib === undefined ? '' : ' data-used-mib="' +
        esc(s.used_mib) + '"') + '><title>' + esc(s.job) + (s.team ? ' (' + esc(s.team) + ')' : '') +
        ': ' + (kind === 'mem' ? mib(s.mem_mib) + ', uses ' + mib(s.used_mib) : (s.compute_permille / 10) +
        '% compute, uses ' + (s.compute_percent === undefined ? '?' : Math.round(s.compute_percent) + '%')) +
        '</title><rect class="slice" x="' + x.toFixed(2) + '" y="0" width="' + w.toFixed(2) + '" height="14" fill="hsl(' + hue(s.job) +
        ' 55% 55%)"/><rect class="used" x="' + x.toFixed(2) + '" y="9" width="' + uw.toFixed(2) + '" height="5"/></g>';
      x += w;
    }
    return '<svg viewBox="0 0 100 14" preserveAspectRatio="none" role="img" aria-label="' +
      esc((kind === 'mem' ? 'memory' : 'compute') + ' of ' + dev.uuid) + '"><rect class="track" x="0" y="0" width="100" height="14"/>' +
      out + '</svg>';
  }

  function nodesPage(params) {
    const region = params.get('region') || '';
    const page = parseInt(params.get('page') || '0', 10) || 0;
    const q = new URLSearchParams();
    if (region) q.set('region', region);
    if (page) q.set('page', page);
    const shell = '<h1>Nodes and GPUs</h1><div class="filters"><label>Region<select id="f-region">' +
      '<option value="">all regions</option></select></label><div class="pager" id="pager"></div></div>' +
      '<p class="muted">Each GPU: its memory (upper bar) and its compute (lower bar), split into the slices placed on ' +
      'it, each slice\'s darker foot what it really uses (from the agents\' usage records).</p><div id="content"></div>';
    startView('nodes', 'api/nodes' + (q.toString() ? '?' + q : ''), shell, (d) => {
      const sel = $('f-region');
      if (sel.options.length !== d.regions.length + 1) {
        sel.innerHTML = '<option value="">all regions</option>' +
          d.regions.map((r) => '<option' + (r === region ? ' selected' : '') + '>' + esc(r) + '</option>').join('');
      }
      $('pager').innerHTML = d.pages > 1
        ? '<button type="button" id="prev"' + (d.page <= 0 ? ' disabled' : '') + '>Previous</button><span>page ' +
          (d.page + 1) + ' of ' + d.pages + ' (' + d.total + ' nodes)</span><button type="button" id="next"' +
          (d.page + 1 >= d.pages ? ' disabled' : '') + '>Next</button>'
        : '<span class="muted">' + d.total + ' nodes</span>';
      const go = (p) => setHash('nodes', { region, page: p ? String(p) : '' });
      if ($('prev')) $('prev').onclick = () => go(d.page - 1);
      if ($('next')) $('next').onclick = () => go(d.page + 1);
      let html = '<div class="nodes">';
      for (const n of d.nodes) {
        html += '<section class="panel node" data-node="' + esc(n.name) + '"><h3>' + esc(n.name) + ' ' +
          badge(n.cordoned ? 'cordoned' : n.state) + '</h3><div class="where">' +
          esc([n.region, n.cloud, n.zone].filter(Boolean).join(' · ')) + '</div>';
        if (n.state === 'notready')
          html += '<p class="error">Its agent\'s record is gone; its allocations (' + esc(n.jobs.join(', ')) +
            ') wait for recovery.</p>';
        for (const dev of n.devices) {
          const memUsed = dev.free_mib === null ? null : dev.mem_mib - dev.free_mib;
          html += '<div class="gpu' + (dev.healthy ? '' : ' unhealthy') + '" data-gpu="' + esc(dev.uuid) + '">' +
            '<div class="name"><b>#' + dev.index + ' ' + esc(dev.model) + '</b>' + mib(dev.mem_mib) +
            (dev.healthy ? '' : ' · unhealthy') + (dev.util === null ? '' : '<br>util ' + dev.util + '%') +
            (memUsed === null ? '' : ' · ' + mib(memUsed) + ' used') + '</div>' +
            gpuBar(dev, 'mem') + gpuBar(dev, 'compute') + '<div class="slices">';
          for (const s of dev.slices)
            html += '<span><a href="#/job/' + encodeURIComponent(s.job) + '">' + esc(s.job) + '</a>' +
              (s.team ? ' ' + esc(s.team) : '') + ' · ' + (s.whole ? 'whole' : mib(s.mem_mib) + ', ' +
              s.compute_permille / 10 + '%') + (s.used_mib === undefined ? '' : ' · uses ' + mib(s.used_mib) +
              (s.compute_percent === undefined ? '' : ', ' + Math.round(s.compute_percent) + '%')) +
              (s.suspended ? ' · suspended' : '') + '</span>';
          if (!dev.slices.length) html += '<span>free</span>';
          html += '</div></div>';
        }
        html += '</section>';
      }
      html += '</div>';
      if (!d.nodes.length) html = '<p class="muted">No nodes' + (region ? ' in ' + esc(region) : '') + '.</p>';
      $('content').innerHTML = html;
    });
    $('f-region').onchange = (e) => setHash('nodes', { region: e.target.value });
  }

  /* ------------------------------------------------------------ queue */
  function queuePage(params) {
    const f = { state: params.get('state') || 'active', team: params.get('team') || '', region: params.get('region') || '' };
    const q = new URLSearchParams();
    if (f.state !== 'all') q.set('state', f.state);
    if (f.team) q.set('team', f.team);
    if (f.region) q.set('region', f.region);
    const shell = '<h1>Queue and jobs</h1><div class="filters">' +
      '<label>State<select id="f-state">' + STATES.map((s) => '<option' + (s === f.state ? ' selected' : '') + '>' +
        s + '</option>').join('') + '</select></label>' +
      '<label>Team<select id="f-team"><option value="">all teams</option></select></label>' +
      '<label>Region<select id="f-region"><option value="">all regions</option></select></label>' +
      '<span id="count" class="muted"></span></div><div id="content"></div>';
    const fill = (id, list, value, all) => {
      const sel = $(id);
      const want = [''].concat(list);
      if (value && !list.includes(value)) want.push(value);
      const have = Array.from(sel.options).map((o) => o.value);
      if (have.join('\n') === want.join('\n')) return;
      sel.innerHTML = want.map((v) => '<option value="' + esc(v) + '"' + (v === value ? ' selected' : '') + '>' +
        esc(v || all) + '</option>').join('');
    };
    startView('queue', 'api/jobs' + (q.toString() ? '?' + q : ''), shell, (d) => {
      fill('f-team', d.teams, f.team, 'all teams');
      fill('f-region', d.regions, f.region, 'all regions');
      $('count').textContent = d.total + ' job' + (d.total === 1 ? '' : 's') +
        (d.jobs.length < d.total ? ' (first ' + d.jobs.length + ' shown)' : '');
      if (!d.jobs.length) { $('content').innerHTML = '<p class="muted">No jobs.</p>'; return; }
      let html = '<div class="panel scroll"><table><thead><tr><th>Job</th><th>State</th><th>Team</th>' +
        '<th class="hide-narrow">Region</th><th class="hide-narrow">Node</th><th class="num hide-narrow">GPUs</th>' +
        '<th class="num hide-narrow">Priority</th><th class="num">Age</th><th>Reason</th></tr></thead><tbody>';
      for (const j of d.jobs)
        html += '<tr data-job="' + esc(j.id) + '" data-state="' + esc(j.state) + '"><td><a href="#/job/' +
          encodeURIComponent(j.id) + '">' + esc(j.id) + '</a></td><td>' + badge(j.state) + '</td><td class="team">' + esc(j.team) +
          '</td><td class="hide-narrow">' + esc(j.region) + '</td><td class="hide-narrow">' + esc(j.node) +
          '</td><td class="num hide-narrow">' + j.devices + '</td><td class="num hide-narrow">' + j.priority +
          '</td><td class="num">' + age(j.submitted_ms) + '</td><td class="reason">' +
          (j.state === 'pending' || j.state === 'failed' || j.state === 'lost' ? esc(j.reason) : '') + '</td></tr>';
      html += '</tbody></table></div>';
      $('content').innerHTML = html;
    });
    $('f-state').onchange = (e) => setHash('queue', Object.assign({}, f, { state: e.target.value }));
    $('f-team').onchange = (e) => setHash('queue', Object.assign({}, f, { team: e.target.value }));
    $('f-region').onchange = (e) => setHash('queue', Object.assign({}, f, { region: e.target.value }));
  }

  /* ------------------------------------------------------------ one job */
  function jobPage(id) {
    const shell = '<p><a href="#/queue">&larr; Queue</a></p><h1>Job <span class="mono">' + esc(id) +
      '</span> <span id="state"></span></h1><div id="content"></div>';
    startView('job', 'api/jobs/' + encodeURIComponent(id), shell, (d) => {
      const j = d.job;
      $('state').innerHTML = badge(j.state);
      const team = j.team !== undefined ? j.team : j.owner;
      let html = '<div class="job-grid"><section class="panel"><h2>Summary</h2><dl class="kv">' +
        kv('state', j.state) + kv('reason', j.reason) + kv('team', team) + kv('region', j.region) +
        kv('node', j.node) + kv('attempts', j.attempts) + kv('submitted', when(j.submitted_ms)) +
        kv('updated', when(j.updated_ms)) + (d.archived ? kv('record', 'archived (ended and removed from the store)') : '') +
        '</dl></section>';
      html += '<section class="panel"><h2>Allocation</h2>';
      if (d.alloc) {
        html += '<dl class="kv">' + kv('node', d.alloc.node) + (d.alloc.suspended ? kv('suspended', 'yes') : '') + '</dl>' +
          '<table><thead><tr><th>GPU</th><th class="num">Memory</th><th class="num">Compute</th><th class="num">Uses</th></tr></thead><tbody>';
        for (const dv of d.alloc.devices || []) {
          const u = (d.usage || []).find((x) => x.uuid === dv.uuid);
          html += '<tr><td class="mono">' + esc(dv.uuid) + '</td><td class="num">' + (dv.whole ? 'whole' : mib(dv.mem_mib)) +
            '</td><td class="num">' + (dv.whole ? '100%' : (dv.compute_percent || 0) + '%') + '</td><td class="num">' +
            (u ? mib(u.mem_used_mib) + ', ' + Math.round(u.compute_percent) + '%' : '?') + '</td></tr>';
        }
        html += '</tbody></table>';
      } else {
        html += '<p class="muted">' + (j.state === 'pending' ? 'Not placed yet: ' + esc(j.reason || 'waiting for a round') : 'None.') + '</p>';
      }
      html += '</section></div>';
      if (d.full) {
        const spec = Object.assign({}, j);
        delete spec.history;
        html += '<h2>Spec</h2><pre>' + esc(JSON.stringify(spec, null, 2)) + '</pre>';
        html += '<h2>History</h2><ol class="timeline">';
        for (const h of j.history || [])
          html += '<li>' + badge(h.state) + (h.node ? ' on <span class="mono">' + esc(h.node) + '</span>' : '') +
            (h.reason ? ' — ' + esc(h.reason) : '') + '<div class="when">' + esc(when(h.at_ms)) + '</div></li>';
        html += '</ol>';
      } else {
        html += '<p class="muted">This job belongs to another team: its metadata only.</p>';
      }
      const hasLog = d.full && j.node && (j.command || j.image);   /* a reservation runs no process */
      html += '<h2>Log</h2><div id="log"><p class="muted">' +
        (hasLog ? 'Reading the last lines from its node…'
          : 'None to show: the job has not run, runs no process, or belongs to another team.') +
        '</p></div>';
      $('content').innerHTML = html;
      if (hasLog)
        logTail(id);
    });
  }
  /* The last 200 lines of the job's stdout and stderr, from its node
   * (GET api/logs/<id>: the API's logs, which its node's agent serves). */
  async function logTail(id) {
    const gen = generation;
    try {
      const r = await fetch('api/logs/' + encodeURIComponent(id) + '?tail=200',
        { headers: { Authorization: 'Bearer ' + token() }, cache: 'no-store' });
      const d = await r.json();
      if (gen !== generation || !$('log')) return;
      if (r.status !== 200) {
        $('log').innerHTML = '<p class="muted">' + esc(d.error || 'HTTP ' + r.status) + '</p>';
        return;
      }
      const out = (d.stdout && d.stdout.data) || '', err = (d.stderr && d.stderr.data) || '';
      $('log').innerHTML = '<p class="muted">run <span class="mono">' + esc(d.run) + '</span> on <span class="mono">' +
        esc(d.node) + '</span>' + (d.running ? ', running' : ', ended') + '; the last 200 lines (gpupool logs ' + esc(id) + ')</p>' +
        '<h3>stdout</h3><pre class="log" id="log-stdout">' + esc(out) + '</pre>' +
        (err ? '<h3>stderr</h3><pre class="log" id="log-stderr">' + esc(err) + '</pre>' : '');
    } catch (e) {
      if (gen === generation && $('log'))
        $('log').innerHTML = '<p class="muted">the log could not be read</p>';
    }
  }
  function kv(k, v) {
    return v === undefined || v === null || v === '' ? '' : '<dt>' + esc(k) + '</dt><dd>' + esc(v) + '</dd>';
  }

  /* ------------------------------------------------------------ start */
  document.addEventListener('DOMContentLoaded', () => {
    applyTheme();
    $('theme').addEventListener('click', toggleTheme);
    $('logout').addEventListener('click', () => signOut());
    $('login-form').addEventListener('submit', login);
    window.addEventListener('hashchange', route);
    document.addEventListener('visibilitychange', () => {
      if (!document.hidden && current && token()) { stopPolling(); const g = generation; poll(g); }
    });
    route();
  });
})();
