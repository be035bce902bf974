// statusflow console: a single page on the public API, no framework (the
// whole console is a few DOM helpers; a framework would outweigh it), no
// build step, no CDN. Live state comes from one Server-Sent Events stream
// read with fetch (so the token travels in a header, never in a URL).
// Panels register themselves in `tabs` (other features add theirs there).
'use strict';

const TOKEN_KEY = 'statusflow.token';
const S = {token: sessionStorage.getItem(TOKEN_KEY) || '', who: null, instances: [], schema: null,
  qr: {}, log: {}, live: false, listeners: new Set(), stats: {received: 0, rendered: 0, dropped: 0}};
window.statusflow = S; // for tests and the curious: S.stats

// ---- DOM helpers -----------------------------------------------------------
function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'html') el.innerHTML = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const k of kids.flat()) if (k != null && k !== false) el.append(k.nodeType ? k : String(k));
  return el;
}
const $ = (s, el = document) => el.querySelector(s);
let uid = 0;
const id = (p) => `${p}-${++uid}`;
function field(label, input, hint) {
  input.id ||= id('f');
  return h('div', {}, h('label', {for: input.id}, label, hint ? h('span', {class: 'hint'}, ' — ', hint) : null), input);
}
function toast(msg) {
  const t = $('#toast'); t.textContent = msg; t.classList.add('show');
  clearTimeout(toast.t); toast.t = setTimeout(() => t.classList.remove('show'), 3500);
}
function fmtTime(s) { const d = new Date(s); return isNaN(d) ? '' : d.toLocaleTimeString(); }
const enc = encodeURIComponent;

// ---- API -------------------------------------------------------------------
async function api(method, path, body, headers = {}) {
  const opts = {method, headers: {token: S.token, ...headers}};
  if (body instanceof FormData || body instanceof Blob) opts.body = body;
  else if (body !== undefined) { opts.body = JSON.stringify(body); opts.headers['Content-Type'] = 'application/json'; }
  let res, json = null;
  try { res = await fetch(path, opts); json = await res.json().catch(() => null); }
  catch (e) { return {ok: false, status: 0, json: null, message: 'Network error: ' + e.message}; }
  const message = json ? (json.success ? json.message : (json.error && json.error.message)) : res.statusText;
  if (res.status === 401 && path !== '/api/whoami') signOut('Your token was refused; sign in again.');
  return {ok: res.ok, status: res.status, json: json || {}, message, traceId: json && (json.traceId || (json.data && json.data.traceId))};
}

// ---- live stream (SSE over fetch) -----------------------------------------
let streamAbort = null;
async function openStream() {
  if (streamAbort) streamAbort.abort();
  const ctl = new AbortController(); streamAbort = ctl;
  let backoff = 1000;
  while (!ctl.signal.aborted && S.token) {
    try {
      const res = await fetch('/api/events/stream', {headers: {token: S.token, Accept: 'text/event-stream'}, signal: ctl.signal});
      if (!res.ok) throw new Error('HTTP ' + res.status);
      setLive(true); backoff = 1000;
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = '';
      for (;;) {
        const {value, done} = await reader.read();
        if (done) break;
        buf += value;
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) { dispatch(buf.slice(0, i)); buf = buf.slice(i + 2); }
      }
    } catch (e) { if (ctl.signal.aborted) return; }
    setLive(false);
    // Reconnect after a failure (not a polling loop: events arrive pushed).
    await new Promise(r => setTimeout(r, backoff)); backoff = Math.min(backoff * 2, 15000);
  }
}
function setLive(on) { S.live = on; const l = $('#live'); l.className = 'live ' + (on ? 'on' : 'off'); l.textContent = on ? 'live' : 'reconnecting…'; }
function dispatch(block) {
  let type = 'message', data = '';
  for (const line of block.split('\n')) {
    if (line.startsWith('event: ')) type = line.slice(7);
    else if (line.startsWith('data: ')) data += line.slice(6);
  }
  if (!data) return;
  let ev; try { ev = JSON.parse(data); } catch { return; }
  if (type === 'dropped') { S.stats.dropped = ev.dropped; return; }
  if (type === 'hello') return;
  S.stats.received++;
  const inst = ev.instance;
  if (type === 'qr') { S.qr[inst] = ev; }
  else {
    const log = (S.log[inst] ||= []);
    log.push(ev); if (log.length > 1000) log.splice(0, log.length - 1000);
    if (type === 'instance.state') {
      const it = S.instances.find(x => x.name === inst);
      if (it) { it.connection = {...(it.connection || {}), state: ev.data.state, reason: ev.data.reason, numberJid: ev.data.jid || (it.connection || {}).numberJid}; it.status = ev.data.state; }
      if (ev.data.state === 'connected') delete S.qr[inst];
    }
  }
  for (const f of S.listeners) f(type, ev);
}
function onLive(f) { S.listeners.add(f); return () => S.listeners.delete(f); }

// ---- routing ----------------------------------------------------------------
const tabs = []; // {id, title, show(inst) -> bool, render(root, inst)}
function addTab(t) { tabs.push(t); }
let cleanup = [];
function route() {
  cleanup.forEach(f => f()); cleanup = [];
  const main = $('#main'); main.replaceChildren();
  $('#signout').hidden = !S.token;
  if (!S.token || !S.who) return renderSignIn(main);
  const parts = location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  const crumbs = $('#crumbs'); crumbs.replaceChildren(h('a', {href: '#/'}, 'Instances'));
  if (parts[0] === 'i' && parts[1]) {
    const name = parts[1];
    crumbs.append(' / ', name);
    return renderInstance(main, name, parts[2] || 'overview', parts.slice(3));
  }
  renderInstances(main);
  main.focus({preventScroll: true});
}
window.addEventListener('hashchange', route);

// ---- sign in ---------------------------------------------------------------
function renderSignIn(main) {
  const input = h('input', {type: 'password', autocomplete: 'current-password', required: true, placeholder: 'sfa_… or sfi_…'});
  const msg = h('p', {class: 'err', role: 'alert'});
  const form = h('form', {class: 'card signin', onsubmit: async (e) => {
    e.preventDefault(); S.token = input.value.trim();
    if (await signIn()) { location.hash = '#/'; route(); } else { msg.textContent = 'That token was not accepted.'; S.token = ''; }
  }},
  h('h1', {}, 'Sign in'),
  h('p', {class: 'muted'}, 'Use the account token (every instance) or an instance token (that instance only). It stays in this tab’s session storage and is sent in a header, never in a URL.'),
  field('Token', input), msg, h('p', {}, h('button', {class: 'btn', type: 'submit'}, 'Sign in')));
  main.append(form); input.focus();
}
async function signIn() {
  const r = await api('GET', '/api/whoami');
  if (!r.ok) return false;
  S.who = r.json.data; sessionStorage.setItem(TOKEN_KEY, S.token);
  await loadInstances(); openStream();
  return true;
}
function signOut(why) {
  sessionStorage.removeItem(TOKEN_KEY); S.token = ''; S.who = null; S.instances = [];
  if (streamAbort) streamAbort.abort(); setLive(false); $('#live').textContent = '';
  if (why) toast(why); location.hash = '#/'; route();
}
async function loadInstances() {
  const r = await api('GET', '/api/instance/list');
  if (r.ok) S.instances = r.json.instances || [];
  return r;
}
const stateOf = (it) => (it.connection && it.connection.state) || it.status || 'unknown';
const badge = (st) => h('span', {class: 'badge s-' + st}, st);

// ---- instances --------------------------------------------------------------
function renderInstances(main) {
  const isAccount = S.who.kind === 'account';
  main.append(h('div', {class: 'row spread'}, h('h1', {}, 'Instances'),
    h('span', {class: 'muted'}, isAccount ? 'Account token: every instance' : 'Instance token: ' + S.who.instance)));
  if (isAccount) main.append(createForm());
  const grid = h('div', {class: 'grid', id: 'instances'});
  main.append(grid);
  const draw = () => {
    grid.replaceChildren(...S.instances.map(it => h('article', {class: 'card', 'data-instance': it.name},
      h('div', {class: 'row spread'}, h('h2', {style: 'margin:0'}, h('a', {href: '#/i/' + enc(it.name)}, it.name)), badge(stateOf(it))),
      h('p', {class: 'muted'}, it.engine, it.connection && it.connection.numberJid ? ' · ' + it.connection.numberJid : '',
        it.connection && it.connection.reason ? h('br') : null, it.connection && it.connection.reason ? it.connection.reason : ''),
      h('div', {class: 'row'}, h('a', {class: 'btn', href: '#/i/' + enc(it.name) + '/publish'}, 'Publish'),
        it.engine === 'whatsmeow' && stateOf(it) !== 'connected' ? h('a', {class: 'btn ghost', href: '#/i/' + enc(it.name) + '/link'}, 'Link a phone') : null))));
    if (!S.instances.length) grid.append(h('p', {class: 'muted'}, 'No instance yet.'));
  };
  draw();
  cleanup.push(onLive((t) => { if (t === 'instance.state') draw(); }));
  loadInstances().then(draw);
}
function createForm() {
  const name = h('input', {required: true, pattern: '[A-Za-z0-9_.-]{1,64}', placeholder: 'sales'});
  const engine = h('select', {}, h('option', {value: 'sandbox'}, 'sandbox (no phone; records what it would send)'), h('option', {value: 'whatsmeow'}, 'WhatsApp (link a phone)'));
  const out = h('div', {class: 'answer', role: 'status'});
  return h('form', {class: 'card', 'aria-label': 'Create an instance', onsubmit: async (e) => {
    e.preventDefault();
    const r = await api('POST', '/api/instance/new', {name: name.value, engine: engine.value});
    if (!r.ok) { out.replaceChildren(h('p', {class: 'err'}, r.message)); return; }
    const inst = r.json.instance;
    out.replaceChildren(h('p', {class: 'ok'}, `Created ${inst.name}. Its instance token (shown once): `), h('p', {class: 'mono'}, inst.token));
    await loadInstances(); route();
    if (inst.engine === 'whatsmeow') location.hash = '#/i/' + enc(inst.name) + '/link';
    else location.hash = '#/i/' + enc(inst.name) + '/publish';
  }}, h('h2', {style: 'margin-top:0'}, 'New instance'),
  h('div', {class: 'two', style: 'grid-template-columns:1fr 1fr'}, field('Name', name, 'letters, digits, - _ .'), field('Engine', engine)),
  h('p', {}, h('button', {class: 'btn', type: 'submit'}, 'Create')), out);
}

// ---- one instance -------------------------------------------------------------
async function renderInstance(main, name, tab, rest) {
  let it = S.instances.find(x => x.name === name);
  if (!it) { await loadInstances(); it = S.instances.find(x => x.name === name); }
  if (!it) { main.append(h('p', {class: 'err'}, 'Instance not found, or not visible with this token.')); return; }
  const head = h('div', {class: 'row spread'}, h('h1', {}, name, ' ', badge(stateOf(it))), instanceActions(it));
  cleanup.push(onLive((t, ev) => { if (t === 'instance.state' && ev.instance === name) { const b = $('h1 .badge'); if (b) b.replaceWith(badge(stateOf(it))); } }));
  const visible = tabs.filter(t => t.show(it));
  const nav = h('nav', {class: 'tabs', 'aria-label': 'Instance sections'},
    ...visible.map(t => h('a', {href: `#/i/${enc(name)}/${t.id}`, 'aria-current': t.id === tab ? 'page' : null}, t.title)));
  const body = h('section', {'aria-label': tab});
  main.append(head, nav, body);
  const t = visible.find(x => x.id === tab) || visible[0];
  t.render(body, it, rest);
}
function instanceActions(it) {
  const act = async (label, method, path, confirmText) => {
    if (confirmText && !confirm(confirmText)) return;
    const r = await api(method, path);
    toast(r.ok ? `${label}: ${r.message}` : `${label} failed: ${r.message}`);
    await loadInstances(); if (label === 'Delete' && r.ok) location.hash = '#/'; else route();
  };
  const n = enc(it.name);
  return h('div', {class: 'row'},
    it.engine === 'whatsmeow' ? h('button', {class: 'btn ghost', type: 'button', onclick: () => act('Reconnect', 'POST', '/api/instance/reconnect/' + n)}, 'Reconnect') : null,
    it.engine === 'whatsmeow' ? h('button', {class: 'btn ghost', type: 'button', onclick: () => act('Logout', 'DELETE', '/api/instance/logout/' + n, `Unlink the phone from ${it.name}?`)}, 'Log out') : null,
    S.who.kind === 'account' ? h('button', {class: 'btn danger', type: 'button', onclick: () => act('Delete', 'DELETE', '/api/instance/delete/' + n, `Delete ${it.name} and its session?`)}, 'Delete') : null);
}

// Overview: state and shortcuts.
addTab({id: 'overview', title: 'Overview', show: () => true, render(root, it) {
  const c = it.connection || {};
  root.append(h('div', {class: 'card'}, h('table', {}, h('tbody', {},
    h('tr', {}, h('th', {}, 'Engine'), h('td', {}, it.engine)),
    h('tr', {}, h('th', {}, 'State'), h('td', {id: 'ov-state'}, stateOf(it), c.reason ? ' — ' + c.reason : '')),
    h('tr', {}, h('th', {}, 'Number'), h('td', {}, c.numberJid || '—'))))));
  cleanup.push(onLive((t, ev) => { if (t === 'instance.state' && ev.instance === it.name) $('#ov-state').textContent = ev.data.state + (ev.data.reason ? ' — ' + ev.data.reason : ''); }));
}});

// Link a phone: QR image refreshed by `qr` stream messages, or a pairing code.
addTab({id: 'link', title: 'Link a phone', show: it => it.engine === 'whatsmeow', render(root, it) {
  const img = h('img', {class: 'qr', alt: 'QR code to scan with WhatsApp › Linked devices', hidden: true, id: 'qr'});
  const stateLine = h('p', {role: 'status', 'aria-live': 'polite', id: 'link-state'});
  const steps = h('ol', {class: 'steps', 'aria-label': 'Linking progress'});
  const number = h('input', {inputmode: 'tel', placeholder: '5511999999999', autocomplete: 'tel'});
  const code = h('p', {class: 'mono', style: 'font-size:28px;letter-spacing:4px', id: 'pair-code'});
  const drawSteps = () => {
    const st = stateOf(it), reason = (it.connection || {}).reason || '';
    const linked = st === 'connected' || /sync/i.test(reason) || !!(it.connection || {}).numberJid;
    const syncing = /sync/i.test(reason);
    steps.replaceChildren(
      h('li', {class: linked ? 'done' : (S.qr[it.name] ? 'cur' : 'todo')}, 'Phone linked'),
      h('li', {class: st === 'connected' ? 'done' : (syncing ? 'cur' : 'todo')}, 'Contacts synced'),
      h('li', {class: st === 'connected' ? 'done' : 'todo'}, 'Connected: ready to publish'));
    stateLine.replaceChildren(badge(st), ' ', reason || (st === 'connected' ? 'The phone is linked and connected.' : ''));
    const q = S.qr[it.name];
    if (q && st !== 'connected') { img.src = q.qrCodeBase64; img.hidden = false; img.dataset.code = q.qrCode; }
    else img.hidden = true;
  };
  const connect = async (withNumber) => {
    const digits = number.value.replace(/\D/g, '');
    const r = await api('GET', '/api/instance/connect/' + enc(it.name) + (withNumber ? '?number=' + enc(digits) : ''));
    if (!r.ok) { stateLine.replaceChildren(h('span', {class: 'err'}, r.message)); return; }
    if (r.json.qrCodeBase64 && !S.qr[it.name]) S.qr[it.name] = {qrCode: r.json.qrCode, qrCodeBase64: r.json.qrCodeBase64};
    if (r.json.pairingCode) code.textContent = r.json.pairingCode;
    drawSteps();
  };
  root.append(h('div', {class: 'two'},
    h('div', {class: 'card'}, h('h2', {style: 'margin-top:0'}, 'Scan the QR code'),
      h('p', {class: 'muted'}, 'On the phone: WhatsApp › Settings › Linked devices › Link a device. The code refreshes itself as WhatsApp rotates it.'),
      h('p', {}, h('button', {class: 'btn', type: 'button', id: 'show-qr', onclick: () => connect(false)}, 'Show QR code')),
      img, stateLine, steps),
    h('div', {class: 'card'}, h('h2', {style: 'margin-top:0'}, 'Or use a pairing code'),
      field('Phone number', number, 'international format, digits only'),
      h('p', {}, h('button', {class: 'btn ghost', type: 'button', onclick: () => connect(true)}, 'Get pairing code')), code)));
  drawSteps();
  cleanup.push(onLive((t, ev) => { if (ev.instance === it.name && (t === 'qr' || t === 'instance.state')) drawSteps(); }));
}});

// ---- publish: a form built from schemas/status.publish.input.json ------------
async function publishSchema() {
  if (!S.schema) { const r = await fetch('/schemas/status.publish.input.json'); S.schema = await r.json(); }
  return S.schema;
}
// fieldsFor lists the properties that apply to a type: a property named in an
// allOf branch applies to that branch's types only; others apply to all.
function fieldsFor(schema, type) {
  const props = {...schema.properties}, owner = {};
  for (const br of schema.allOf || []) {
    const cond = br.if && br.if.properties && br.if.properties.type;
    const types = cond ? (cond.const ? [cond.const] : cond.enum) : [];
    for (const [k, v] of Object.entries((br.then && br.then.properties) || {})) {
      (owner[k] ||= new Set()); types.forEach(t => owner[k].add(t));
      if (types.includes(type) && typeof v === 'object') props[k] = {...props[k], ...v};
    }
  }
  const req = new Set(schema.required || []);
  for (const br of schema.allOf || []) {
    const cond = br.if && br.if.properties && br.if.properties.type;
    const types = cond ? (cond.const ? [cond.const] : cond.enum) : [];
    if (types.includes(type)) (br.then.required || []).forEach(r => req.add(r));
  }
  return Object.entries(props).filter(([k]) => k !== 'type' && (!owner[k] || owner[k].has(type))).map(([k, v]) => ({name: k, s: v, required: req.has(k)}));
}
const LABELS = {message: 'Text', mediaUrl: 'Media', mimeType: 'MIME type', fileName: 'File name', backgroundColor: 'Background colour', font: 'Font', isVoice: 'Voice note', duration: 'Duration (s)', source: 'Source tag', publishAt: 'Publish at', expireAfter: 'Expire after'};
const SKIP = new Set(['waveform']); // generated from the audio

addTab({id: 'publish', title: 'Publish', show: () => true, async render(root, it) {
  const schema = await publishSchema();
  const typeSel = h('select', {name: 'type', id: 'pub-type'}, ...schema.properties.type.enum.map(t => h('option', {value: t}, t)));
  const fieldsBox = h('div');
  const out = h('div', {class: 'answer', role: 'status', 'aria-live': 'polite', id: 'pub-answer'});
  const phone = h('div', {class: 'phone', 'aria-label': 'Preview as a phone shows it'}, h('div', {class: 'bar'}), h('div', {class: 'story'}));
  let inputs = {};
  const preview = () => {
    const story = $('.story', phone), t = typeSel.value, v = (k) => inputs[k] && inputs[k].value;
    story.className = 'story f-' + (v('font') || 'system');
    story.style.background = t === 'text' || (t === 'audio') ? (v('backgroundColor') || '#128C7E') : '#000';
    story.replaceChildren();
    if (t === 'text') story.append(v('message') || 'Your status text');
    else if (t === 'audio') story.append(h('div', {class: 'voice'}, 'Voice note', h('div', {class: 'wave'}, ...Array.from({length: 32}, (_, i) => h('i', {style: `height:${20 + 70 * Math.abs(Math.sin(i * 0.7))}%`})))));
    else {
      const f = inputs._file && inputs._file.files[0];
      const src = f ? URL.createObjectURL(f) : (v('mediaUrl') && /^(https?:|data:)/.test(v('mediaUrl')) ? v('mediaUrl') : '');
      if (src) story.append(t === 'video' ? h('video', {src, muted: true, controls: true}) : h('img', {src, alt: 'media preview'}));
      else story.append(h('span', {class: 'muted'}, t + ' preview'));
      if (v('message')) story.append(h('div', {class: 'cap'}, v('message')));
    }
  };
  const build = () => {
    inputs = {}; fieldsBox.replaceChildren();
    for (const f of fieldsFor(schema, typeSel.value)) {
      if (SKIP.has(f.name)) continue;
      const s = f.s, label = LABELS[f.name] || f.name;
      let input;
      if (f.name === 'mediaUrl') {
        const url = h('input', {name: 'mediaUrl', placeholder: 'https://… or data:…', id: 'pub-mediaUrl'});
        const file = h('input', {type: 'file', accept: typeSel.value + '/*', id: 'pub-file', 'aria-label': 'Or upload a file'});
        inputs.mediaUrl = url; inputs._file = file;
        file.addEventListener('change', preview); url.addEventListener('input', preview);
        fieldsBox.append(field(label + (f.required ? ' *' : ''), url, 'a URL, or choose a file below (uploaded to statusflow, kept an hour)'), field('Upload a file', file));
        continue;
      }
      if (s.enum) input = h('select', {name: f.name}, h('option', {value: ''}, '(default)'), ...s.enum.map(x => h('option', {value: x}, x)));
      else if (s.type === 'boolean') input = h('input', {type: 'checkbox', name: f.name, checked: s.default === true});
      else if (f.name === 'backgroundColor') {
        input = h('input', {name: f.name, placeholder: '#128C7E', pattern: '#([0-9A-Fa-f]{6}|[0-9A-Fa-f]{8})'});
        const pick = h('input', {type: 'color', value: '#128c7e', 'aria-label': 'Pick a colour', oninput: () => { input.value = pick.value; preview(); }});
        inputs[f.name] = input; input.addEventListener('input', () => { if (/^#[0-9A-Fa-f]{6}$/.test(input.value)) pick.value = input.value.toLowerCase(); preview(); });
        fieldsBox.append(field(label, h('div', {class: 'row', style: 'flex-wrap:nowrap'}, pick, input), s.description)); continue;
      } else if (f.name === 'message') input = h('textarea', {name: f.name, maxlength: s.maxLength});
      else if (s.type === 'number' || s.type === 'integer') input = h('input', {type: 'number', name: f.name, step: 'any'});
      else input = h('input', {name: f.name, maxlength: s.maxLength});
      if (f.required) input.required = true;
      inputs[f.name] = input; input.addEventListener('input', preview); input.addEventListener('change', preview);
      fieldsBox.append(field(label + (f.required ? ' *' : ''), input, (s.description || '').split('. ')[0]));
    }
    preview();
  };
  typeSel.addEventListener('change', build);
  const submit = h('button', {class: 'btn', type: 'submit', id: 'pub-submit'}, 'Publish');
  const form = h('form', {'aria-label': 'Publish a status', onsubmit: async (e) => {
    e.preventDefault(); submit.disabled = true; out.replaceChildren(h('p', {class: 'muted'}, 'Publishing…'));
    try {
      const body = {type: typeSel.value};
      const file = inputs._file && inputs._file.files[0];
      if (file) {
        const fd = new FormData(); fd.append('file', file, file.name);
        const up = await api('POST', '/api/media/' + enc(it.name), fd);
        if (!up.ok) { out.replaceChildren(h('p', {class: 'err'}, 'Upload failed: ' + up.message)); return; }
        body.mediaUrl = up.json.data.mediaUrl;
      }
      for (const [k, el] of Object.entries(inputs)) {
        if (k.startsWith('_') || (k === 'mediaUrl' && body.mediaUrl)) continue;
        if (el.type === 'checkbox') { if (!el.checked) body[k] = false; continue; }
        if (el.value === '') continue;
        body[k] = el.type === 'number' ? Number(el.value) : el.value;
      }
      const r = await api('POST', '/api/message/status/' + enc(it.name), body);
      const d = r.json.data || {};
      out.replaceChildren(r.ok
        ? h('p', {class: 'ok'}, `${r.message}: ${d.messageId} · trace `, h('a', {href: `#/i/${enc(it.name)}/events/${d.traceId}`, class: 'mono'}, d.traceId))
        : h('p', {class: 'err'}, `${r.status} ${r.message}`, r.json.error && r.json.error.status ? ` (${r.json.error.status})` : '', r.traceId ? h('span', {class: 'mono'}, ' · trace ' + r.traceId) : ''));
      if (r.ok && inputs._file) inputs._file.value = '';
    } finally { submit.disabled = false; }
  }}, field('Type', typeSel), fieldsBox, h('p', {}, submit), out);
  root.append(h('div', {class: 'two'}, h('div', {class: 'card'}, form), h('div', {}, phone)));
  build();
}});

// ---- sandbox preview ---------------------------------------------------------
function argbToCss(n) { if (n == null) return '#128C7E'; n = n >>> 0; return '#' + (n & 0xffffff).toString(16).padStart(6, '0'); }
function b64bytes(s) { try { return Uint8Array.from(atob(s), c => c.charCodeAt(0)); } catch { return []; } }
function renderStory(st) {
  const m = st.message || {}, story = h('div', {class: 'story'});
  if (m.extendedTextMessage) {
    // protojson names the FontType enum; README "Send Status" lists the mapping.
    const x = m.extendedTextMessage, f = typeof x.font === 'string' ? x.font : 'SYSTEM';
    story.className = 'story f-' + ({SYSTEM: 'system', SYSTEM_TEXT: 'sans-serif', CALISTOGA_REGULAR: 'serif', FB_SCRIPT: 'script', SYSTEM_BOLD: 'bold', COURIERPRIME_BOLD: 'monospace', MORNINGBREEZE_REGULAR: 'handwriting', EXO2_EXTRABOLD: 'extrabold'}[f] || 'system');
    story.style.background = argbToCss(x.backgroundArgb); story.append(x.text || '');
  } else if (m.imageMessage || m.videoMessage) {
    const x = m.imageMessage || m.videoMessage;
    const thumb = x.JPEGThumbnail || x.jpegThumbnail;
    if (thumb) story.append(h('img', {src: 'data:image/jpeg;base64,' + thumb, alt: (m.imageMessage ? 'image' : 'video') + ' status', style: 'width:100%'}));
    if (m.videoMessage) story.append(h('div', {class: 'cap play', style: 'top:45%;font-size:34px', 'aria-hidden': 'true'}, '▶'), h('div', {class: 'cap', style: 'bottom:auto;top:16px;text-align:right'}, `${x.seconds || 0}s`));
    if (x.caption) story.append(h('div', {class: 'cap'}, x.caption));
  } else if (m.audioMessage) {
    const x = m.audioMessage, w = Array.from(b64bytes(x.waveform || ''));
    story.style.background = argbToCss(x.backgroundArgb);
    story.append(h('div', {class: 'voice'}, x.PTT || x.ptt ? 'Voice note' : 'Audio', h('div', {class: 'wave', role: 'img', 'aria-label': 'waveform'}, ...w.map(v => h('i', {style: `height:${Math.max(3, v)}%`}))), `${x.seconds || 0}s`));
  }
  return h('div', {class: 'phone'}, h('div', {class: 'bar'}), story);
}
// The full media of a recorded status (the file the sandbox would have
// uploaded), fetched with the token in its header — never in a URL — into a
// blob URL, then shown as a phone would: the full image, a playable video,
// the voice note under its waveform. Called only when a card is on screen or
// clicked, so the page stays light; blob URLs are cached per message and
// revoked when the page is left.
async function showMedia(card, st, inst, cache) {
  if (!st.media || card.dataset.media) return;
  card.dataset.media = 'loading';
  let url = cache.get(st.messageId);
  if (!url) {
    let res;
    try { res = await fetch(`/api/sandbox/${enc(inst)}/media/${enc(st.messageId)}`, {headers: {token: S.token}}); }
    catch { card.dataset.media = 'error'; return; }
    // 404: the file was not kept (over the size cap, or recorded earlier).
    if (!res.ok) { card.dataset.media = res.status === 404 ? 'missing' : 'error'; return; }
    url = URL.createObjectURL(await res.blob());
    cache.set(st.messageId, url);
  }
  const story = card.querySelector('.story');
  if (!story) return;
  if (st.type === 'video') {
    const thumb = story.querySelector('img');
    const v = h('video', {src: url, controls: true, playsinline: true, preload: 'metadata', poster: thumb ? thumb.src : null, 'aria-label': 'video status'});
    story.querySelectorAll('.play').forEach(e => e.remove());
    if (thumb) thumb.replaceWith(v); else story.prepend(v);
  } else if (st.type === 'image') {
    const img = story.querySelector('img');
    if (img) img.src = url; else story.prepend(h('img', {src: url, alt: 'image status', style: 'width:100%'}));
  } else if (st.type === 'audio') {
    (story.querySelector('.voice') || story).append(h('audio', {src: url, controls: true, preload: 'metadata', 'aria-label': 'voice note'}));
  }
  card.dataset.media = 'loaded';
}
addTab({id: 'preview', title: 'Sandbox preview', show: it => it.engine === 'sandbox', async render(root, it) {
  const list = h('div', {class: 'grid', id: 'preview-list'});
  root.append(h('p', {class: 'muted'}, 'What this sandbox instance would have sent, newest first; updated live.'), list);
  const cache = new Map(), byCard = new WeakMap();
  const io = 'IntersectionObserver' in window ? new IntersectionObserver(es => es.forEach(e => {
    if (e.isIntersecting) { io.unobserve(e.target); showMedia(e.target, byCard.get(e.target), it.name, cache); }
  }), {rootMargin: '200px'}) : null;
  cleanup.push(() => { if (io) io.disconnect(); cache.forEach(u => URL.revokeObjectURL(u)); cache.clear(); });
  const card = (st, el) => {
    if (!st.media) return el;
    byCard.set(el, st);
    el.addEventListener('click', () => showMedia(el, st, it.name, cache));
    if (io) io.observe(el);
    return el;
  };
  const load = async () => {
    const r = await api('GET', `/api/sandbox/${enc(it.name)}/statuses?limit=30`);
    if (!r.ok) { list.replaceChildren(h('p', {class: 'err'}, r.message)); return; }
    if (io) io.disconnect();
    list.replaceChildren(...(r.json.statuses || []).map(st => card(st, h('article', {class: 'card', 'data-message-id': st.messageId, 'data-type': st.type},
      renderStory(st),
      h('p', {}, h('b', {}, st.type), st.revoked ? ' · revoked' : '', ' · ', fmtTime(st.createdAt), st.source ? ' · ' + st.source : ''),
      st.traceId ? h('p', {class: 'mono'}, h('a', {href: `#/i/${enc(it.name)}/events/${st.traceId}`}, 'trace ' + st.traceId)) : null,
      h('details', {}, h('summary', {}, 'Exact WhatsApp message (protobuf as JSON)'), h('pre', {}, JSON.stringify(st.message, null, 2)),
        st.media ? h('p', {class: 'mono'}, `${st.media.mimetype} · ${st.media.bytes} bytes · sha256 ${st.media.sha256}`) : null)))));
    if (!list.children.length) list.append(h('p', {class: 'muted'}, 'Nothing yet: publish something.'));
  };
  await load();
  let pending = false;
  cleanup.push(onLive((t, ev) => { if (ev.instance === it.name && /^status\.(published|deleted)/.test(t) && !pending) { pending = true; setTimeout(() => { pending = false; load(); }, 150); } }));
}});

// ---- views and schedules (issue 18) ---------------------------------------------
addTab({id: 'schedules', title: 'Views & schedules', show: () => true, async render(root, it) {
  const n = enc(it.name);
  const sched = h('div', {id: 'schedule-list'}), views = h('div', {id: 'views-result'});
  const idIn = h('input', {placeholder: 'messageId', id: 'views-message-id'});
  const showViews = async () => {
    const id = idIn.value.trim(); if (!id) return;
    const r = await api('GET', `/api/status/views/${n}?messageId=${enc(id)}&limit=100`);
    if (!r.ok) { views.replaceChildren(h('p', {class: 'err'}, r.message)); return; }
    const d = r.json.data;
    views.replaceChildren(h('p', {}, h('b', {class: 'views-count'}, String(d.count)), d.count === 1 ? ' viewer' : ' viewers'),
      table(['viewer', 'kind', 'viewed'], d.viewers.map(v => [h('span', {class: 'mono'}, v.viewer), v.kind, fmtTime(v.viewedAt)])));
  };
  const load = async () => {
    const r = await api('GET', `/api/schedule/${n}?state=pending,running,failed,cancelled,done&limit=50`);
    if (!r.ok) { sched.replaceChildren(h('p', {class: 'err'}, r.message)); return; }
    sched.replaceChildren(table(['due', 'action', 'message', 'state', ''], r.json.data.schedules.map(x => [
      new Date(x.dueAt).toLocaleString(), x.action + (x.messageType ? ' ' + x.messageType : '') + (x.expireAfter ? ' · expires after ' + x.expireAfter : ''),
      h('a', {href: `#/i/${n}/events/${x.traceId}`, class: 'mono'}, x.messageId),
      x.state + (x.error ? ' — ' + x.error.message : ''),
      x.state === 'pending' ? h('button', {class: 'btn danger', type: 'button', 'data-schedule-id': x.id, onclick: async () => {
        const c = await api('DELETE', `/api/schedule/${n}/${enc(x.id)}`); toast(c.message); load(); }}, 'Cancel') : ''])));
  };
  root.append(h('div', {class: 'card'}, h('h2', {style: 'margin-top:0'}, 'Scheduled (publishAt, expireAfter)'),
      h('p', {class: 'muted'}, 'Publish with publishAt or expireAfter to schedule; updated live.'), sched),
    h('form', {class: 'card', onsubmit: (e) => { e.preventDefault(); showViews(); }}, h('h2', {style: 'margin-top:0'}, 'Who viewed a status'),
      h('div', {class: 'row', style: 'flex-wrap:nowrap'}, idIn, h('button', {class: 'btn', type: 'submit', id: 'views-show'}, 'Show')), views));
  await load();
  let pending = false;
  cleanup.push(onLive((t, ev) => {
    if (ev.instance !== it.name) return;
    if (t === 'status.viewed' && ev.data && ev.data.messageId === idIn.value.trim()) showViews();
    if (/^status\.(scheduled|cancelled|published|failed|deleted)/.test(t) && !pending) { pending = true; setTimeout(() => { pending = false; load(); }, 150); }
  }));
}});

// ---- events: live stream and a status's story by trace id ---------------------
addTab({id: 'events', title: 'Events', show: () => true, async render(root, it, rest) {
  const traceIn = h('input', {placeholder: 'trace id (32 hex)', pattern: '[0-9a-f]{32}', value: rest[0] || '', id: 'trace-id'});
  const story = h('div', {id: 'story'});
  const listBox = h('div', {class: 'evlist', id: 'evlist', role: 'log', 'aria-label': 'Live events', tabindex: 0});
  const count = h('span', {class: 'muted', id: 'ev-count'});
  root.append(h('form', {class: 'card', onsubmit: (e) => { e.preventDefault(); location.hash = `#/i/${enc(it.name)}/events/${traceIn.value.trim()}`; }},
    h('h2', {style: 'margin-top:0'}, 'A status’s story'), h('div', {class: 'row', style: 'flex-wrap:nowrap'}, traceIn, h('button', {class: 'btn', type: 'submit'}, 'Show'))), story,
  h('div', {class: 'card'}, h('div', {class: 'row spread'}, h('h2', {style: 'margin:0'}, 'Live'), count), listBox));
  if (rest[0]) showStory(story, it, rest[0]);
  // Rows are appended once per animation frame, and the list keeps its last
  // 300 rows, so 100+ events/s never make the page re-render everything.
  const MAX = 300; let queue = [];
  const row = (ev) => h('div', {class: 'evrow'}, h('span', {class: 'mono'}, fmtTime(ev.time || ev.at)), h('b', {}, ev.type || 'qr'),
    h('span', {}, summary(ev), ' ', ev.data && ev.data.traceId ? h('button', {type: 'button', onclick: () => { location.hash = `#/i/${enc(it.name)}/events/${ev.data.traceId}`; }}, 'story') : null));
  const flush = () => {
    raf = 0; if (!queue.length) return;
    const frag = document.createDocumentFragment();
    for (const ev of queue.slice(-MAX)) frag.append(row(ev));
    S.stats.rendered += queue.length; queue = [];
    const atBottom = listBox.scrollTop + listBox.clientHeight >= listBox.scrollHeight - 30;
    listBox.append(frag);
    while (listBox.children.length > MAX) listBox.firstChild.remove();
    if (atBottom) listBox.scrollTop = listBox.scrollHeight;
    count.textContent = `${S.stats.rendered} shown · ${S.stats.dropped} dropped`;
  };
  let raf = 0;
  for (const ev of (S.log[it.name] || []).slice(-MAX)) queue.push(ev);
  flush();
  cleanup.push(onLive((t, ev) => { if (ev.instance === it.name && t !== 'qr') { queue.push(ev); if (!raf) raf = requestAnimationFrame(flush); } }));
}});
function summary(ev) {
  const d = ev.data || {};
  if (ev.type === 'instance.state') return `${d.state}${d.reason ? ' — ' + d.reason : ''}`;
  return [d.action, d.messageType, d.messageId, d.viewer && 'viewed by ' + d.viewer, d.dueAt && 'due ' + fmtTime(d.dueAt), d.error && (d.error.message || d.error), d.deleteType].filter(Boolean).join(' · ');
}
async function showStory(root, it, traceId) {
  root.replaceChildren(h('p', {class: 'muted'}, 'Loading…'));
  const r = await api('GET', `/api/events/log/${enc(it.name)}?traceId=${enc(traceId)}`);
  if (!r.ok) { root.replaceChildren(h('p', {class: 'err'}, r.message)); return; }
  const evs = [...(r.json.events || []), ...(r.json.related || [])];
  const dels = r.json.deliveries || [];
  const replay = async (d) => { const x = await api('POST', `/api/events/deliveries/${enc(it.name)}/${enc(d.id)}/replay`); toast(x.message); showStory(root, it, traceId); };
  root.replaceChildren(h('div', {class: 'card', 'aria-label': 'Story of trace ' + traceId},
    h('h2', {style: 'margin-top:0'}, 'Story of ', h('span', {class: 'mono'}, traceId)),
    evs.length ? h('ol', {class: 'steps'}, ...evs.map(e => h('li', {class: e.type === 'status.failed' ? 'cur' : 'done'}, h('b', {}, e.type), ' ', fmtTime(e.time), ' ', summary(e)))) : h('p', {class: 'muted'}, 'No events for this trace.'),
    h('h2', {}, 'Webhook deliveries'),
    dels.length ? h('table', {}, h('thead', {}, h('tr', {}, h('th', {}, 'Webhook'), h('th', {}, 'Event'), h('th', {}, 'State'), h('th', {}, 'Attempts'), h('th', {}, ''))),
      h('tbody', {}, ...dels.map(d => h('tr', {}, h('td', {}, d.webhook), h('td', {}, d.eventType), h('td', {}, d.state, d.lastError ? h('div', {class: 'err'}, d.lastError) : ''),
        h('td', {}, ...(d.attempts || []).map(a => h('div', {class: 'mono'}, `#${a.attempt} ${a.statusCode || '—'} ${a.latencyMs}ms ${a.error || ''}`))),
        h('td', {}, h('button', {class: 'btn ghost', type: 'button', onclick: () => replay(d)}, 'Replay'))))))
      : h('p', {class: 'muted'}, 'No deliveries.')));
}

// ---- webhooks and inbound hooks -------------------------------------------------
addTab({id: 'hooks', title: 'Webhooks', show: () => true, async render(root, it) {
  const n = enc(it.name);
  const secret = h('div', {role: 'status', 'aria-live': 'polite'});
  const showSecret = (label, s) => secret.replaceChildren(h('div', {class: 'card'}, h('p', {}, label, ' (shown once): '), h('p', {class: 'mono'}, s)));
  const wh = h('div'), ib = h('div');
  const load = async () => {
    const [a, b] = await Promise.all([api('GET', '/api/events/getWebhook/' + n), api('GET', '/api/events/inbound/' + n)]);
    wh.replaceChildren(a.ok ? table(['Label', 'URL', 'Events', 'Enabled', ''], (a.json.webhooks || []).map(w => [w.label, h('span', {class: 'mono'}, w.url), (w.events || []).join(', ') || 'all', w.enabled ? 'yes' : 'no' + (w.disabledReason ? ' — ' + w.disabledReason : ''),
      h('div', {class: 'row'}, h('button', {class: 'btn ghost', type: 'button', onclick: async () => { const r = await api('POST', `/api/events/webhook/${n}/${enc(w.label)}/rotate`); if (r.ok) showSecret('New secret of ' + w.label, r.json.webhook.secret); else toast(r.message); load(); }}, 'Rotate secret'),
        h('button', {class: 'btn danger', type: 'button', onclick: async () => { if (!confirm('Delete webhook ' + w.label + '?')) return; const r = await api('DELETE', `/api/events/webhook/${n}/${enc(w.label)}`); toast(r.message); load(); }}, 'Delete'))])) : h('p', {class: 'err'}, a.message));
    ib.replaceChildren(b.ok ? table(['Id', 'URL', 'Node', ''], (b.json.hooks || []).map(x => [h('span', {class: 'mono'}, x.id), h('span', {class: 'mono'}, x.url || ''), x.node || x.nodeId || '',
      h('div', {class: 'row'}, h('button', {class: 'btn ghost', type: 'button', onclick: async () => { const r = await api('POST', `/api/events/inbound/${n}/${enc(x.id)}/rotate`); if (r.ok) showSecret('New secret of hook ' + x.id, r.json.hook.secret); else toast(r.message); load(); }}, 'Rotate secret'),
        h('button', {class: 'btn danger', type: 'button', onclick: async () => { if (!confirm('Delete inbound hook?')) return; const r = await api('DELETE', `/api/events/inbound/${n}/${enc(x.id)}`); toast(r.message); load(); }}, 'Delete'))])) : h('p', {class: 'err'}, b.message));
  };
  const label = h('input', {required: true, value: 'default'}), url = h('input', {required: true, type: 'url', placeholder: 'https://example.com/hook'});
  const evs = h('input', {placeholder: 'status.published, status.failed (empty: all)'});
  const whForm = h('form', {onsubmit: async (e) => {
    e.preventDefault();
    const body = {label: label.value, url: url.value, enabled: true};
    const list = evs.value.split(',').map(s => s.trim()).filter(Boolean); if (list.length) body.events = list;
    const r = await api('POST', '/api/events/webhook/' + n, body);
    if (r.ok && r.json.webhook && r.json.webhook.secret) showSecret('Secret of ' + body.label, r.json.webhook.secret); else toast(r.message);
    load();
  }}, h('div', {class: 'grid'}, field('Label', label), field('URL', url), field('Events', evs)), h('p', {}, h('button', {class: 'btn', type: 'submit'}, 'Save webhook')));
  const ibForm = h('form', {onsubmit: async (e) => {
    e.preventDefault();
    const r = await api('POST', '/api/events/inbound/' + n, {});
    if (r.ok && r.json.hook) showSecret('Secret of hook ' + r.json.hook.id, r.json.hook.secret); else toast(r.message);
    load();
  }}, h('button', {class: 'btn', type: 'submit'}, 'Create inbound hook'));
  root.append(secret, h('div', {class: 'card'}, h('h2', {style: 'margin-top:0'}, 'Webhooks (outbound, signed)'), wh, whForm),
    h('div', {class: 'card'}, h('h2', {style: 'margin-top:0'}, 'Inbound hooks (publish with a signed POST)'), ib, ibForm));
  load();
}});
function table(head, rows) {
  if (!rows.length) return h('p', {class: 'muted'}, 'None yet.');
  return h('div', {style: 'overflow-x:auto'}, h('table', {}, h('thead', {}, h('tr', {}, ...head.map(x => h('th', {}, x)))), h('tbody', {}, ...rows.map(r => h('tr', {}, ...r.map(c => h('td', {}, c)))))));
}

// ---- boot -----------------------------------------------------------------------
function applyTheme(t) { if (t) document.documentElement.dataset.theme = t; else delete document.documentElement.dataset.theme; }
applyTheme(localStorage.getItem('statusflow.theme'));
document.addEventListener('DOMContentLoaded', async () => {
  $('#theme').addEventListener('click', () => {
    const dark = document.documentElement.dataset.theme ? document.documentElement.dataset.theme === 'dark' : matchMedia('(prefers-color-scheme: dark)').matches;
    const t = dark ? 'light' : 'dark'; localStorage.setItem('statusflow.theme', t); applyTheme(t);
  });
  $('#signout').addEventListener('click', () => signOut());
  if (S.token && !(await signIn())) { S.token = ''; sessionStorage.removeItem(TOKEN_KEY); }
  route();
  document.body.dataset.ready = '1';
  S.interactiveAt = performance.now();
});
