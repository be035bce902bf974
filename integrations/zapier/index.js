'use strict';
// statusflow's Zapier Platform app. Its creates, triggers, fields, choices
// and samples come from the node catalog through the server's renderer
// (generated/app.json, written by `go run ./cmd/nodegen` at the repository
// root); this file only wires them to statusflow's API.
const crypto = require('node:crypto');

const zapier = require('zapier-platform-core');
const { Webhook } = require('standardwebhooks');

const gen = require('./generated/app.json');

const api = (bundle, p) => `${String(bundle.authData.baseUrl).replace(/\/+$/, '')}${p}`;
const enc = encodeURIComponent;

// --- authentication: base URL + token, tested by listing the instances ---
const authentication = {
	type: 'custom',
	fields: gen.authFields,
	test: async (z, bundle) => {
		const res = await z.request({ url: api(bundle, '/api/instance/list') });
		return res.data;
	},
	connectionLabel: (z, bundle) => bundle.authData.baseUrl,
};

const addToken = (request, z, bundle) => {
	if (bundle.authData && bundle.authData.token) request.headers.token = bundle.authData.token;
	request.headers.Accept = 'application/json';
	return request;
};

// statusflow's error envelope {"success":false,"error":{"message","status"},"traceId"}
// becomes a Zapier error with the API's literal message.
const handleErrors = (response, z) => {
	if (response.status >= 400 && !(response.request && response.request.skipThrowForStatus)) throwApiError(response, z);
	return response;
};

function throwApiError(response, z) {
	let env = {};
	try {
		env = JSON.parse(response.content);
	} catch (e) {
		/* not JSON */
	}
	const err = env.error || {};
	const msg = err.message || `statusflow answered ${response.status}`;
	throw new z.errors.Error(env.traceId ? `${msg} (traceId ${env.traceId})` : msg, err.status || 'statusflow_error', response.status);
}

// origin tells statusflow which Zap step asked (stored with the status and
// carried by every event about it).
function originOf(bundle, nodeName, source) {
	const zap = (bundle.meta && bundle.meta.zap) || {};
	const o = { platform: 'zapier', nodeName };
	if (zap.id !== undefined) o.workflowId = String(zap.id);
	if (zap.name) o.workflowName = String(zap.name);
	const run = bundle.meta && (bundle.meta.executionId || bundle.meta.zapRunId || bundle.meta.id);
	if (run) o.executionId = String(run);
	if (source) o.source = source;
	return o;
}

async function execute(z, bundle, nodeId, input, nodeName) {
	const res = await z.request({
		method: 'POST',
		url: api(bundle, `/api/nodes/${enc(nodeId)}/execute`),
		body: { instance: bundle.inputData.instance, input, origin: originOf(bundle, nodeName, input.source) },
	});
	const out = res.data.output || {};
	return { ...out, traceId: out.traceId || res.data.traceId };
}

// --- the instance dropdown ---------------------------------------------------
// A hidden trigger lists the instances the token may use; every instance
// field offers them (and still takes a typed or mapped name).
const instanceList = {
	key: 'instance_list',
	noun: 'Instance',
	display: { label: 'List Instances', description: 'Lists the instances for the instance dropdown.', hidden: true },
	operation: {
		perform: async (z, bundle) => {
			const res = await z.request({ url: api(bundle, '/api/instance/list') });
			return (res.data.instances || []).map((i) => ({ id: i.name, name: i.name, state: i.state || i.status }));
		},
		sample: { id: 'sales', name: 'sales', state: 'connected' },
		outputFields: [
			{ key: 'id', label: 'Instance' },
			{ key: 'name', label: 'Name' },
			{ key: 'state', label: 'State' },
		],
	},
};
const instanceField = { ...gen.instanceField, dynamic: 'instance_list.id.name' };

// --- creates: one per catalog action ----------------------------------------
// With a discriminator (status.publish's type), the fields of the chosen
// value are a dynamic field.
const fieldsOf = (c, inputData) => {
	if (!c.discriminator) return c.fields || [];
	const v = (inputData && inputData[c.discriminator.key]) || c.discriminator.default;
	return c.fieldsBy[v] || [];
};

// inputOf turns Zapier's input (strings from a Zap) back into the node's input.
function inputOf(c, d) {
	const input = {};
	if (c.discriminator) input[c.discriminator.key] = d[c.discriminator.key];
	for (const f of fieldsOf(c, d)) {
		let v = d[f.key];
		if (v === undefined || v === null || v === '') continue;
		if (f.type === 'boolean') v = v === true || v === 'true' || v === 'yes';
		else if (f.type === 'number' || f.type === 'integer') v = f.list ? [].concat(v).map(Number) : Number(v);
		else if (f.list && !Array.isArray(v)) v = String(v).split(/[\s,]+/).filter(Boolean).map(Number);
		input[f.key] = v;
	}
	return input;
}

function makeCreate(c) {
	const fields = [instanceField];
	if (c.discriminator) fields.push(c.discriminator, (z, bundle) => fieldsOf(c, bundle.inputData));
	else fields.push(...(c.fields || []));
	return {
		key: c.key,
		noun: c.noun,
		display: { label: c.label, description: c.description },
		operation: {
			inputFields: fields,
			perform: (z, bundle) => execute(z, bundle, c.id, inputOf(c, bundle.inputData), c.label),
			sample: c.sample,
			outputFields: c.outputFields,
		},
	};
}
const creates = Object.fromEntries(gen.creates.map((c) => [c.key, makeCreate(c)]));

// --- searches -----------------------------------------------------------------
// Find a status by its message id (GET /api/status/find/:instance): none
// found is an empty list, as Zapier expects of a search.
function makeFindStatus(sd) {
	return {
		key: sd.key,
		noun: sd.noun,
		display: { label: sd.label, description: sd.description },
		operation: {
			inputFields: [
				instanceField,
				{
					key: 'messageId',
					label: 'Message ID',
					type: 'string',
					required: true,
					helpText: 'The message ID of the status, as Publish Status returns it or its events carry it.',
				},
			],
			perform: async (z, bundle) => {
				const res = await z.request({
					url: api(bundle, `/api/status/find/${enc(bundle.inputData.instance)}`),
					params: { messageId: bundle.inputData.messageId },
					skipThrowForStatus: true,
				});
				if (res.status === 404 && /message not found/.test(res.content)) return [];
				if (res.status >= 400) throwApiError(res, z);
				const d = res.data.data || {};
				return [{ id: d.messageId, ...d }];
			},
			sample: sd.sample,
			outputFields: sd.outputFields,
		},
	};
}
const searches = Object.fromEntries((gen.searches || []).map((sd) => [sd.key, makeFindStatus(sd)]));

// --- REST-hook triggers ------------------------------------------------------
// flatten makes a CloudEvent a Zapier item: its id (Zapier's dedupe key),
// type, time, instance, traceparent and origin (data.origin), then the
// event's data.
function flatten(ev) {
	return {
		id: ev.id,
		type: ev.type,
		time: ev.time,
		instance: ev.instance,
		traceparent: ev.traceparent,
		origin: (ev.data && ev.data.origin) || {},
		...(ev.data || {}),
	};
}

// Zapier passes the raw delivery in bundle.rawRequest (headers prefixed
// "Http-"); statusflow signs it per Standard Webhooks, checked with the
// reference package (signatures of the current and, during a rotation, the
// previous secret; a timestamp within 5 minutes).
function deliveryHeaders(raw) {
	const h = {};
	for (const [k, v] of Object.entries((raw && raw.headers) || {})) h[k.toLowerCase().replace(/^http-/, '')] = v;
	return h;
}

function makeTrigger(t) {
	const hookLabel = (bundle) =>
		`zapier-${crypto.createHash('sha256').update(String(bundle.targetUrl)).digest('hex').slice(0, 24)}`;
	return {
		key: t.key,
		noun: t.noun,
		display: { label: t.label, description: t.description },
		operation: {
			type: 'hook',
			inputFields: [instanceField],
			performSubscribe: async (z, bundle) => {
				const instance = bundle.inputData.instance;
				const res = await z.request({
					method: 'POST',
					url: api(bundle, `/api/events/webhook/${enc(instance)}`),
					body: { label: hookLabel(bundle), enabled: true, url: bundle.targetUrl, events: [t.event] },
				});
				const w = res.data.webhook || {};
				if (!w.secret) throw new z.errors.Error('statusflow did not return the signing secret (the label exists already)', 'statusflow_error', 409);
				return { instance, label: w.label, id: w.id, secret: w.secret };
			},
			performUnsubscribe: async (z, bundle) => {
				const s = bundle.subscribeData || {};
				const res = await z.request({
					method: 'DELETE',
					url: api(bundle, `/api/events/webhook/${enc(s.instance)}/${enc(s.label)}`),
					skipThrowForStatus: true,
				});
				return res.status === 404 ? { label: s.label, deleted: false } : res.data;
			},
			perform: (z, bundle) => {
				const raw = bundle.rawRequest || {};
				const body = typeof raw.content === 'string' ? raw.content : '';
				const secret = (bundle.subscribeData || {}).secret;
				try {
					if (!secret) throw new Error('no signing secret: turn the Zap off and on again');
					new Webhook(secret).verify(body, deliveryHeaders(raw));
				} catch (e) {
					throw new z.errors.Error(`Rejected a delivery: ${e.message}`, 'InvalidSignature', 401);
				}
				const ev = JSON.parse(body);
				return ev.type === t.event ? [flatten(ev)] : [];
			},
			performList: async (z, bundle) => {
				const res = await z.request({
					url: api(bundle, `/api/events/log/${enc(bundle.inputData.instance)}`),
					params: { type: t.event, limit: 10 },
				});
				return (res.data.events || []).filter((ev) => ev.type === t.event).map(flatten);
			},
			sample: t.sample,
			outputFields: t.outputFields,
		},
	};
}
const triggers = Object.fromEntries(gen.triggers.map((t) => [t.key, makeTrigger(t)]));
triggers[instanceList.key] = instanceList;

module.exports = {
	version: require('./package.json').version,
	platformVersion: zapier.version,
	authentication,
	beforeRequest: [addToken],
	afterResponse: [handleErrors],
	triggers,
	creates,
	searches,
	resources: {},
};
