#!/usr/bin/env node
// The Statusflow Trigger's webhook lifecycle against a real statusflow on
// loopback, with n8n's hook/webhook function contexts stood in by small
// objects (the rest of the package runs in a real n8n, test/e2e.mjs):
// activation registers a webhook subscription (checkExists → create), a
// published status is delivered, signed, to the trigger's URL and becomes the
// workflow's item; a tampered delivery is refused with 401; deactivation
// deletes the subscription.
import { rmSync } from 'node:fs';
import { createRequire } from 'node:module';

import { check, loopbackServer, sleep, startStatusflow } from './harness.mjs';

const require = createRequire(import.meta.url);
const { StatusflowTrigger } = require('../dist/nodes/StatusflowTrigger/StatusflowTrigger.node.js');

const sf = await startStatusflow();
const received = [];
const receiver = await loopbackServer({}, (rec, res) => {
	received.push(rec);
	res.writeHead(204).end();
});

// httpRequestWithAuthentication as n8n does it for our credential: the
// token header, JSON, and an error carrying the response on non-2xx.
async function httpRequest(_cred, o) {
	const res = await fetch(o.baseURL + o.url, {
		method: o.method,
		headers: { ...(o.headers ?? {}), token: sf.token, 'content-type': 'application/json' },
		body: o.body === undefined ? undefined : JSON.stringify(o.body),
	});
	const data = await res.json();
	if (!res.ok) {
		const err = new Error(`HTTP ${res.status}`);
		err.response = { status: res.status, data };
		err.httpCode = String(res.status);
		throw err;
	}
	return data;
}

const staticData = {};
const params = { instance: sf.instance, events: ['status.published', 'status.deleted'] };
const node = { id: '7e4a2b9c-1111-4222-8333-944445555666', name: 'Statusflow Trigger', type: 'CUSTOM.statusflowTrigger' };
const base = {
	getNodeParameter: (n) => params[n],
	getWorkflowStaticData: () => staticData,
	getWorkflow: () => ({ id: 'wfTrigger0000001', name: 'trigger test', active: true }),
	getNode: () => node,
	getCredentials: async () => ({ baseUrl: sf.base, token: sf.token }),
	helpers: { httpRequestWithAuthentication: httpRequest, returnJsonArray: (a) => a.map((json) => ({ json })) },
};
const hooks = { ...base, getNodeWebhookUrl: () => `${receiver.url}/webhook/abc/webhook` };

const trigger = new StatusflowTrigger();
const m = trigger.webhookMethods.default;
let failed = false;
try {
	check((await m.checkExists.call(hooks)) === false, 'checkExists is false before activation');
	check((await m.create.call(hooks)) === true && /^whsec_/.test(staticData.secret), 'create registered a webhook and kept its whsec_ secret');
	const list = await sf.api('GET', `/api/events/getWebhook/${sf.instance}`);
	const hook = list.json.webhooks?.find((w) => w.label === staticData.label);
	check(hook && hook.url === hooks.getNodeWebhookUrl() && hook.events.join() === params.events.join(), `the subscription is listed: ${JSON.stringify(hook)}`);
	check((await m.checkExists.call(hooks)) === true, 'checkExists is true once created');
	// A second activation of the same node (label exists, secret not shown again) recreates it.
	const firstSecret = staticData.secret;
	check((await m.create.call(hooks)) === true && staticData.secret && staticData.secret !== firstSecret, 'create again replaces the webhook with a fresh secret');

	// Publish a status with an origin; the delivery reaches the trigger's URL.
	const origin = { platform: 'n8n', workflowId: 'wfOther', workflowName: 'publisher', executionId: '77', nodeName: 'Post' };
	const pub = await sf.api('POST', '/api/nodes/status.publish/execute', { instance: sf.instance, input: { type: 'text', message: 'trigger me' }, origin });
	check(pub.status === 200, `published a status (${pub.status})`);
	const messageId = pub.json.output.messageId;
	let delivery;
	for (let i = 0; i < 100 && !delivery; i++) {
		delivery = received.find((r) => r.body.toString().includes(messageId) && r.body.toString().includes('status.published'));
		if (!delivery) await sleep(100);
	}
	check(delivery, 'statusflow delivered status.published to the trigger URL');
	check(delivery.headers['webhook-id'] && delivery.headers['webhook-signature']?.startsWith('v1,'), 'the delivery carries Standard Webhooks headers');

	const respond = () => {
		const r = { code: 200, body: undefined };
		r.status = (c) => ((r.code = c), r);
		r.json = (b) => ((r.body = b), r);
		return r;
	};
	const call = async (rawBody, headers) => {
		const response = respond();
		const ctx = { ...base, getRequestObject: () => ({ rawBody, headers, body: {} }), getResponseObject: () => response };
		return { out: await trigger.webhook.call(ctx), response };
	};
	const ok = await call(delivery.body, delivery.headers);
	const item = ok.out.workflowData?.[0]?.[0]?.json;
	check(item?.type === 'status.published' && item.data?.messageId === messageId, `the delivery became the workflow's item (${item?.type} ${item?.data?.messageId})`);
	check(item.data?.origin?.workflowId === 'wfOther' && item.data?.origin?.executionId === '77' && item.traceparent, 'the item carries the publisher origin (data.origin) and traceparent');

	const tampered = await call(Buffer.from(delivery.body.toString().replace('"instance":"sales"', '"instance":"other"')), delivery.headers);
	check(tampered.out.noWebhookResponse === true && tampered.response.code === 401 && !tampered.out.workflowData, 'a tampered body is refused with 401');
	const unsigned = await call(delivery.body, { 'content-type': 'application/json' });
	check(unsigned.response.code === 401 && !unsigned.out.workflowData, 'an unsigned delivery is refused with 401');

	const label = staticData.label;
	check((await m.delete.call(hooks)) === true && !staticData.secret, 'delete removed the subscription and forgot the secret');
	const after = await sf.api('GET', `/api/events/getWebhook/${sf.instance}`);
	check(!after.json.webhooks?.some((w) => w.label === label), 'the webhook is gone from statusflow');
	check((await m.checkExists.call(hooks)) === false, 'checkExists is false after deactivation');
	check((await m.delete.call(hooks)) === true, 'delete again is harmless');
	console.log('trigger test: passed');
} catch (e) {
	failed = true;
	console.error(e.stack || String(e));
	console.error(`trigger test: FAILED (server log ${sf.log})`);
} finally {
	await receiver.close();
	await sf.stop();
	if (!failed && !process.env.KEEP_TEST_DIRS) rmSync(sf.dataDir, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
