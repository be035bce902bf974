// Unit tests of the built package (dist/): the generated parameters follow
// the schemas, and the trigger's signature check agrees with the
// `standardwebhooks` package (the reference implementation).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import test from 'node:test';
import { fileURLToPath } from 'node:url';

import { Webhook } from 'standardwebhooks';

const require = createRequire(import.meta.url);
const pkg = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const schemasDir = process.env.STATUSFLOW_SCHEMAS_DIR || path.join(pkg, '..', '..', 'schemas');
const schema = (n) => JSON.parse(readFileSync(path.join(schemasDir, n), 'utf8'));

const { Statusflow } = require('../dist/nodes/Statusflow/Statusflow.node.js');
const { StatusflowTrigger, webhookLabel } = require('../dist/nodes/StatusflowTrigger/StatusflowTrigger.node.js');
const { verifySignature } = require('../dist/nodes/StatusflowTrigger/signature.js');
const { StatusflowApi } = require('../dist/credentials/StatusflowApi.credentials.js');

const publish = schema('status.publish.input.json');
const props = new Statusflow().description.properties;
const additional = props.find((p) => p.name === 'additionalFields');
const find = (name) => props.filter((p) => p.name === name);
const opt = (name) => additional.options.find((p) => p.name === name);

test('package.json is an n8n community package', () => {
	const p = JSON.parse(readFileSync(path.join(pkg, 'package.json'), 'utf8'));
	assert.equal(p.name, 'n8n-nodes-statusflow');
	assert.ok(p.keywords.includes('n8n-community-node-package'));
	assert.equal(p.n8n.n8nNodesApiVersion, 1);
	for (const f of [...p.n8n.nodes, ...p.n8n.credentials]) require(path.join(pkg, f));
});

test('every publish input field is a parameter, shown for the types its schema branch names', () => {
	for (const name of Object.keys(publish.properties)) {
		assert.ok(find(name).length > 0 || opt(name), `no parameter for ${name}`);
	}
	const type = find('type')[0];
	assert.deepEqual(type.options.map((o) => o.value).sort(), [...publish.properties.type.enum].sort());
	// text requires message; media types require mediaUrl
	const messages = find('message');
	assert.ok(messages.some((m) => m.required && m.displayOptions.show.type.includes('text')));
	const mediaUrl = find('mediaUrl')[0];
	assert.deepEqual(mediaUrl.displayOptions.show.type.sort(), ['audio', 'image', 'video']);
	assert.deepEqual(mediaUrl.displayOptions.show.mediaSource, ['url']);
	assert.ok(find('binaryPropertyName').length === 1);
});

test('fonts and colours are pickers generated from the schema', () => {
	const textBranch = publish.allOf.find((b) => b.if.properties.type.const === 'text');
	const font = opt('font');
	assert.equal(font.type, 'options');
	assert.deepEqual(font.options.map((o) => o.value).sort(), [...textBranch.then.properties.font.enum].sort());
	assert.deepEqual(font.displayOptions.show['/type'], ['text']);
	const bg = opt('backgroundColor');
	assert.equal(bg.type, 'color');
	assert.deepEqual(bg.displayOptions.show['/type'].sort(), ['audio', 'text']);
	assert.equal(opt('isVoice').type, 'boolean');
	assert.equal(opt('isVoice').default, publish.properties.isVoice.default);
});

test('delete, credential and trigger parameters come from their schemas', () => {
	const del = schema('status.delete.input.json');
	for (const name of Object.keys(del.properties)) assert.equal(find(name).length, 1, name);
	const cred = schema('credential.statusflow.json');
	const c = new StatusflowApi();
	assert.equal(c.name, 'statusflowApi');
	assert.deepEqual(c.properties.map((p) => p.name), Object.keys(cred.properties));
	assert.equal(c.properties.find((p) => p.name === 'token').typeOptions.password, true);
	assert.equal(c.test.request.url, '/api/instance/list');
	const wh = schema('webhook.config.input.json');
	const events = new StatusflowTrigger().description.properties.find((p) => p.name === 'events');
	assert.deepEqual(events.options.map((o) => o.value).sort(), wh.properties.events.items.enum.filter((e) => e !== '*').sort());
});

test('webhook labels satisfy the schema', () => {
	const wh = schema('webhook.config.input.json');
	const re = new RegExp(wh.properties.label.pattern);
	for (const [w, n] of [['AbCdEf0123456789', '7e4a2b9c-1111-4222-8333-944445555666'], [undefined, 'x'], ['a'.repeat(80), 'b'.repeat(80)]]) {
		assert.match(webhookLabel(w, n), re);
	}
});

test('signature check agrees with the standardwebhooks package', () => {
	const secret = 'whsec_' + Buffer.from('0123456789abcdef0123456789abcdef').toString('base64');
	const wh = new Webhook(secret);
	const body = JSON.stringify({ type: 'status.published', data: { messageId: '3EB0' } });
	const now = new Date();
	const id = 'msg_2k9';
	const headers = { 'webhook-id': id, 'webhook-timestamp': String(Math.floor(now / 1000)), 'webhook-signature': wh.sign(id, now, body) };
	verifySignature(secret, body, headers);
	assert.deepEqual(wh.verify(body, headers), JSON.parse(body));
	// a rotated secret: two signatures, one matches
	const other = new Webhook('whsec_' + Buffer.from('another secret of 32 bytes......').toString('base64'));
	verifySignature(secret, body, { ...headers, 'webhook-signature': other.sign(id, now, body) + ' ' + headers['webhook-signature'] });
	// header names in any case, values as arrays
	verifySignature(secret, Buffer.from(body), { 'Webhook-Id': [id], 'Webhook-Timestamp': headers['webhook-timestamp'], 'Webhook-Signature': headers['webhook-signature'] });
	assert.throws(() => verifySignature(secret, body + ' ', headers), /No matching signature/);
	assert.throws(() => verifySignature(secret, body, { ...headers, 'webhook-id': 'msg_other' }), /No matching signature/);
	assert.throws(() => verifySignature(secret, body, { ...headers, 'webhook-signature': other.sign(id, now, body) }), /No matching signature/);
	assert.throws(() => verifySignature(secret, body, { 'webhook-id': id }), /Missing required headers/);
	const old = new Date(now.getTime() - 10 * 60 * 1000);
	const oldHeaders = { 'webhook-id': id, 'webhook-timestamp': String(Math.floor(old / 1000)), 'webhook-signature': wh.sign(id, old, body) };
	assert.throws(() => verifySignature(secret, body, oldHeaders), /too old/);
	assert.throws(() => wh.verify(body, oldHeaders));
});
