'use strict';
// The Zapier app against a real statusflow on loopback: the definition passes
// zapier-platform-schema's validateAppDefinition, and createAppTester runs
// the authentication test, the creates, and a REST-hook trigger's
// subscribe → (signed delivery) → perform → unsubscribe, plus performList.
const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { after, before, test } = require('node:test');

const zapier = require('zapier-platform-core');
const { validateAppDefinition } = require('zapier-platform-schema');
const { compileApp, serializeApp } = require('zapier-platform-core/src/tools/schema');
const { Webhook } = require('standardwebhooks');

const App = require('../index');
const { loopbackServer, startStatusflow, waitFor } = require('./helpers');

const appTester = zapier.createAppTester(App);
const schemasDir = process.env.STATUSFLOW_SCHEMAS_DIR || path.join(__dirname, '..', '..', '..', 'schemas');
const schema = (n) => JSON.parse(fs.readFileSync(path.join(schemasDir, n), 'utf8'));

let sf;
let receiver;
let authData;
const meta = { zap: { id: 987654, name: 'statusflow Zapier test' } };

before(async () => {
	sf = await startStatusflow();
	receiver = await loopbackServer();
	authData = { baseUrl: sf.base, token: sf.token };
});
after(async () => {
	if (receiver) await receiver.close();
	if (sf) await sf.stop();
	if (sf && !process.env.KEEP_TEST_DIRS) fs.rmSync(sf.dataDir, { recursive: true, force: true });
});

test('the app definition passes validateAppDefinition', () => {
	const { errors } = validateAppDefinition(serializeApp(compileApp(App)));
	assert.deepEqual(errors.map((e) => `${e.property} ${e.message}`), []);
});

test('fields, choices and triggers are generated from the schemas', async () => {
	const publish = schema('status.publish.input.json');
	const typeField = App.creates.status_publish.operation.inputFields[1];
	assert.deepEqual(typeField.choices.map((c) => c.value), publish.properties.type.enum);
	const dyn = App.creates.status_publish.operation.inputFields[2];
	const text = dyn(null, { inputData: { type: 'text' } });
	const textBranch = publish.allOf.find((b) => b.if.properties.type.const === 'text');
	assert.deepEqual(text.find((f) => f.key === 'font').choices.map((c) => c.value), textBranch.then.properties.font.enum);
	assert.equal(text.find((f) => f.key === 'message').required, true);
	assert.ok(!text.some((f) => f.key === 'mediaUrl'));
	const audio = dyn(null, { inputData: { type: 'audio' } });
	assert.equal(audio.find((f) => f.key === 'mediaUrl').type, 'file');
	assert.equal(audio.find((f) => f.key === 'mediaUrl').required, true);
	assert.equal(audio.find((f) => f.key === 'waveform').list, true);
	assert.ok(audio.some((f) => f.key === 'isVoice'));
	const events = schema('webhook.config.input.json').properties.events.items.enum.filter((e) => e !== '*');
	assert.deepEqual(Object.keys(App.triggers).filter((k) => !App.triggers[k].display.hidden).sort(), events.map((e) => e.replace(/\./g, '_')).sort());
	assert.deepEqual(App.authentication.fields.map((f) => f.key), Object.keys(schema('credential.statusflow.json').properties));
});

test('the instance field is a dropdown fed by the hidden instance list trigger', async () => {
	const field = App.creates.status_publish.operation.inputFields[0];
	assert.equal(field.key, 'instance');
	assert.equal(field.dynamic, 'instance_list.id.name');
	assert.equal(App.triggers.instance_list.display.hidden, true);
	const items = await appTester(App.triggers.instance_list.operation.perform, { authData });
	assert.ok(items.some((i) => i.id === sf.instance && i.name === sf.instance), JSON.stringify(items));
});

test('authentication: the test call accepts the token and refuses a wrong one', async () => {
	const ok = await appTester(App.authentication.test, { authData });
	assert.equal(ok.success, true);
	assert.ok(ok.instances.some((i) => i.name === sf.instance));
	await assert.rejects(appTester(App.authentication.test, { authData: { ...authData, token: 'wrong' } }), /Invalid token/);
});

test('create: publish a text status with the Zap as origin, then delete it', async () => {
	const out = await appTester(App.creates.status_publish.operation.perform, {
		authData,
		meta,
		inputData: { instance: sf.instance, type: 'text', message: 'Hello from Zapier', font: 'serif', backgroundColor: '#128C7E', source: 'zapier-test' },
	});
	assert.equal(out.messageType, 'text');
	assert.match(out.traceId, /^[0-9a-f]{32}$/);
	assert.equal(out.origin.platform, 'zapier');
	assert.equal(out.origin.workflowId, '987654');
	const list = await sf.api('GET', `/api/sandbox/${sf.instance}/statuses`);
	const rec = list.json.statuses.find((s) => s.messageId === out.messageId);
	assert.ok(rec, 'the sandbox recorded the status');
	assert.equal(rec.traceId, out.traceId);
	assert.equal(rec.source, 'zapier-test');
	assert.ok(rec.message.extendedTextMessage.font && rec.message.extendedTextMessage.font !== 'SYSTEM', 'the font choice reached the WhatsApp message');
	const log = await sf.api('GET', `/api/events/log/${sf.instance}?type=status.published`);
	const ev = log.json.events.find((e) => e.data.messageId === out.messageId);
	assert.equal(ev.data.origin.platform, 'zapier');
	assert.equal(ev.data.origin.workflowId, '987654');
	assert.equal(ev.data.origin.workflowName, meta.zap.name);
	assert.equal(ev.data.origin.nodeName, 'Publish Status');

	const del = await appTester(App.creates.status_delete.operation.perform, {
		authData,
		meta,
		inputData: { instance: sf.instance, messageId: out.messageId, deleteForEveryone: true },
	});
	assert.equal(del.messageId, out.messageId);
	const again = await sf.api('GET', `/api/sandbox/${sf.instance}/statuses`);
	assert.equal(again.json.statuses.find((s) => s.messageId === out.messageId).revoked, true);
});

test('create: bad input comes back with the API message', async () => {
	await assert.rejects(
		appTester(App.creates.status_publish.operation.perform, { authData, meta, inputData: { instance: sf.instance, type: 'text', message: '   ' } }),
		/Message is required/,
	);
	await assert.rejects(
		appTester(App.creates.status_publish.operation.perform, { authData, meta, inputData: { instance: 'nope', type: 'text', message: 'x' } }),
		/Instance not found/,
	);
});

test('create: an image status from a file URL on loopback', async (t) => {
	const dir = fs.mkdtempSync(path.join(require('node:os').tmpdir(), 'sf-zapier-jpeg-'));
	const file = path.join(dir, 'x.jpg');
	execFileSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc=size=320x240', '-frames:v', '1', file]);
	const media = await loopbackServer({ '/x.jpg': { type: 'image/jpeg', body: fs.readFileSync(file) } });
	try {
		const out = await appTester(App.creates.status_publish.operation.perform, {
			authData,
			meta,
			inputData: { instance: sf.instance, type: 'image', mediaUrl: `${media.url}/x.jpg`, message: 'caption' },
		}).catch((e) => e);
		if (out instanceof Error && /media pipeline is not configured/.test(out.message)) {
			t.skip(`server: ${out.message}`);
			return;
		}
		if (out instanceof Error) throw out;
		assert.equal(out.messageType, 'image');
		const list = await sf.api('GET', `/api/sandbox/${sf.instance}/statuses`);
		const rec = list.json.statuses.find((s) => s.messageId === out.messageId);
		assert.equal(rec.media.mimetype, 'image/jpeg');
	} finally {
		await media.close();
		fs.rmSync(dir, { recursive: true, force: true });
	}
});

test('search: find a status by message id (none found is an empty list)', async () => {
	const out = await appTester(App.creates.status_publish.operation.perform, {
		authData,
		meta,
		inputData: { instance: sf.instance, type: 'text', message: 'find me', source: 'zapier-find' },
	});
	const search = App.searches.find_status.operation;
	const found = await appTester(search.perform, { authData, inputData: { instance: sf.instance, messageId: out.messageId } });
	assert.equal(found.length, 1);
	assert.equal(found[0].id, out.messageId);
	assert.equal(found[0].messageType, 'text');
	assert.equal(found[0].source, 'zapier-find');
	assert.equal(found[0].traceId, out.traceId);
	assert.equal(found[0].origin.workflowId, '987654');
	assert.equal(found[0].revoked, false);
	assert.deepEqual(await appTester(search.perform, { authData, inputData: { instance: sf.instance, messageId: '3EB0NOPE' } }), []);
	await assert.rejects(appTester(search.perform, { authData, inputData: { instance: 'nope', messageId: out.messageId } }), /Instance not found/);
});

test('descriptions are in Zapier\'s voice', () => {
	for (const c of Object.values(App.creates)) assert.match(c.display.description, /^[A-Z][a-z]+s /, c.key);
	for (const t of Object.values(App.triggers)) {
		if (!t.display.hidden) assert.match(t.display.description, /^Triggers when /, t.key);
	}
	for (const s of Object.values(App.searches)) assert.match(s.display.description, /^Finds /, s.key);
});

test('REST hook: subscribe, a signed delivery becomes an item, unsubscribe', async () => {
	const trig = App.triggers.status_published.operation;
	const targetUrl = `${receiver.url}/hooks/zap-1`;
	const sub = await appTester(trig.performSubscribe, { authData, inputData: { instance: sf.instance }, targetUrl });
	assert.match(sub.secret, /^whsec_/);
	const hooks = await sf.api('GET', `/api/events/getWebhook/${sf.instance}`);
	const hook = hooks.json.webhooks.find((w) => w.label === sub.label);
	assert.equal(hook.url, targetUrl);
	assert.deepEqual(hook.events, ['status.published']);

	const pub = await appTester(App.creates.status_publish.operation.perform, {
		authData,
		meta,
		inputData: { instance: sf.instance, type: 'text', message: 'hooked' },
	});
	const delivery = await waitFor(() => receiver.requests.find((r) => r.url === '/hooks/zap-1' && r.body.toString().includes(pub.messageId)));
	assert.ok(delivery, 'statusflow delivered the event to the subscription URL');
	// Zapier hands the raw request to perform with its headers prefixed "Http-".
	const rawHeaders = {};
	for (const [k, v] of Object.entries(delivery.headers)) rawHeaders['Http-' + k.replace(/(^|-)([a-z])/g, (m) => m.toUpperCase())] = v;
	const content = delivery.body.toString();
	const bundle = {
		authData,
		inputData: { instance: sf.instance },
		subscribeData: sub,
		cleanedRequest: JSON.parse(content),
		rawRequest: { method: 'POST', headers: rawHeaders, content, querystring: '' },
	};
	const items = await appTester(trig.perform, bundle);
	assert.equal(items.length, 1);
	assert.equal(items[0].type, 'status.published');
	assert.equal(items[0].messageId, pub.messageId);
	assert.equal(items[0].origin.workflowId, '987654');
	assert.ok(items[0].id);
	// The official library agrees with the signature the app checked.
	const plain = {};
	for (const k of ['webhook-id', 'webhook-timestamp', 'webhook-signature']) plain[k] = delivery.headers[k];
	assert.deepEqual(new Webhook(sub.secret).verify(content, plain), JSON.parse(content));

	await assert.rejects(appTester(trig.perform, { ...bundle, rawRequest: { ...bundle.rawRequest, content: content.replace(pub.messageId, 'X' + pub.messageId.slice(1)) } }), /signature/i);
	await assert.rejects(appTester(trig.perform, { ...bundle, subscribeData: { ...sub, secret: 'whsec_' + Buffer.from('x'.repeat(32)).toString('base64') } }), /signature/i);

	const listed = await appTester(trig.performList, { authData, inputData: { instance: sf.instance } });
	assert.ok(listed.length >= 1 && listed.every((i) => i.type === 'status.published' && i.id));
	assert.ok(listed.some((i) => i.messageId === pub.messageId));

	await appTester(trig.performUnsubscribe, { authData, inputData: { instance: sf.instance }, subscribeData: sub, targetUrl });
	const afterUnsub = await sf.api('GET', `/api/events/getWebhook/${sf.instance}`);
	assert.ok(!afterUnsub.json.webhooks.some((w) => w.label === sub.label));
});

test('samples follow the output schemas', () => {
	for (const [key, t] of Object.entries(App.triggers)) {
		if (t.display.hidden) continue;
		assert.ok(t.operation.sample.id && t.operation.sample.type === key.replace(/_/g, '.'), key);
	}
	assert.ok(App.creates.status_publish.operation.sample.messageId);
});
