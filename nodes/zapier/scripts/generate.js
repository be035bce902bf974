#!/usr/bin/env node
// Generates generated/schema.json — the Zapier fields, choices and samples of
// the app — from statusflow's JSON Schemas (the repository's schemas/ folder,
// or STATUSFLOW_SCHEMAS_DIR). Nothing in generated/ is edited by hand:
// `npm run build` runs this, and generated/ is not committed.
//
// Mapping (the rules of the n8n package and of the server's renderers):
// - a schema property becomes an input field; `enum` → choices, boolean →
//   boolean, number → number, an array of integers → a list of integers, the
//   media URL → a file field (Zapier hands the app a URL to the file);
// - status.publish.input.json's `allOf` if/then branches say for which
//   `type`s a field applies and is required; a field no branch names applies
//   to every type (the create shows the fields of the chosen type);
// - samples and output fields come from the schemas' `examples` and properties.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const pkg = path.resolve(__dirname, '..');
const schemasDir = path.resolve(process.env.STATUSFLOW_SCHEMAS_DIR || path.join(pkg, '..', '..', 'schemas'));
if (!fs.existsSync(path.join(schemasDir, 'status.publish.input.json'))) {
	console.error(`generate: no schemas in ${schemasDir} (set STATUSFLOW_SCHEMAS_DIR)`);
	process.exit(1);
}
const load = (name) => JSON.parse(fs.readFileSync(path.join(schemasDir, name), 'utf8'));
const exists = (name) => fs.existsSync(path.join(schemasDir, name));

const words = { url: 'URL', id: 'ID', jid: 'JID', mime: 'MIME' };
function label(s) {
	return s
		.replace(/([a-z0-9])([A-Z])/g, '$1 $2')
		.split(/[\s_.-]+/)
		.filter(Boolean)
		.map((w) => words[w.toLowerCase()] ?? w[0].toUpperCase() + w.slice(1).toLowerCase())
		.join(' ');
}
const help = (s) => (s ? s.replace(/`/g, '').trim() : undefined);

function field(key, prop, extra = {}) {
	const p = { ...prop, ...extra };
	const f = { key, label: label(key) };
	if (p.enum) {
		f.type = 'string';
		f.choices = p.enum.map((v) => ({ value: v, label: label(v), sample: v }));
	} else if (p.type === 'boolean') f.type = 'boolean';
	else if (p.type === 'number') f.type = 'number';
	else if (p.type === 'integer') f.type = 'integer';
	else if (p.type === 'array') {
		f.type = p.items?.type === 'integer' ? 'integer' : 'string';
		f.list = true;
	} else f.type = 'string';
	if (p.default !== undefined && !Array.isArray(p.default)) f.default = String(p.default);
	if (p.examples?.[0] !== undefined && typeof p.examples[0] !== 'object') f.placeholder = String(p.examples[0]);
	const h = help(p.description);
	if (h) f.helpText = h;
	return f;
}

// --- publish --------------------------------------------------------------
const publish = load('status.publish.input.json');
const types = publish.properties.type.enum;
const named = new Set();
for (const br of publish.allOf ?? []) Object.keys(br.then?.properties ?? {}).forEach((n) => named.add(n));
const branchTypes = (br) => {
	const t = br.if?.properties?.type;
	return !t ? [] : t.const !== undefined ? [t.const] : t.enum ?? [];
};
// fieldsByType[type] = the fields shown when that type is chosen, in schema order.
const fieldsByType = {};
for (const t of types) {
	const out = [];
	for (const [name, prop] of Object.entries(publish.properties)) {
		if (name === 'type') continue;
		let applies = !named.has(name);
		let extra = {};
		let required = (publish.required ?? []).includes(name);
		for (const br of publish.allOf ?? []) {
			if (!branchTypes(br).includes(t)) continue;
			const add = br.then?.properties?.[name];
			if (add !== undefined) {
				applies = true;
				if (add && typeof add === 'object') {
					const { 'x-errors': _x, ...rest } = add;
					extra = { ...extra, ...rest };
				}
			}
			if ((br.then?.required ?? []).includes(name)) required = true;
		}
		if (!applies) continue;
		const f = field(name, prop, extra);
		if (name === 'mediaUrl') {
			f.type = 'file';
			f.helpText += ' Map a file from a previous step, or enter a URL.';
		}
		if (extra.pattern && /^\^#\(/.test(extra.pattern)) f.placeholder = f.placeholder ?? '#RRGGBB';
		f.required = required;
		out.push(f);
	}
	fieldsByType[t] = out;
}
const typeField = { ...field('type', publish.properties.type), required: true, altersDynamicFields: true, default: types[0] };

// --- delete ---------------------------------------------------------------
const del = load('status.delete.input.json');
const deleteFields = Object.entries(del.properties).map(([k, p]) => ({ ...field(k, p), required: (del.required ?? []).includes(k) }));

// --- instance, auth -------------------------------------------------------
const exec = load('execute.input.json');
const instanceField = { ...field('instance', exec.properties.instance), required: true, placeholder: 'sales' };
const cred = load('credential.statusflow.json');
const authFields = Object.entries(cred.properties).map(([k, p]) => {
	const f = field(k, p);
	f.required = (cred.required ?? []).includes(k);
	if (p.writeOnly) f.type = 'password';
	if (p.format === 'uri') f.type = 'string';
	return f;
});

// --- outputs and samples --------------------------------------------------
const outputFieldsOf = (s, prefix = '') =>
	Object.entries(s.properties ?? {}).flatMap(([k, p]) =>
		p.type === 'object' && p.properties ? outputFieldsOf(p, `${prefix}${k}__`) : [{ key: prefix + k, label: label(k) }],
	);
const publishOut = load('status.publish.output.json');
const deleteOut = exists('status.delete.output.json') ? load('status.delete.output.json') : { properties: {} };
const origin = load('origin.json');

// Triggers: one per event type a webhook can subscribe to; an item is the
// CloudEvent flattened: its id, type, time, instance, traceparent and origin,
// then the event's data.
const wh = load('webhook.config.input.json');
const envelopeFields = [
	{ key: 'id', label: 'Event ID' },
	{ key: 'type', label: 'Event Type' },
	{ key: 'time', label: 'Event Time' },
	{ key: 'instance', label: 'Instance' },
	{ key: 'traceparent', label: 'Traceparent' },
	...Object.keys(origin.properties).filter((k) => k !== 'extra').map((k) => ({ key: `origin__${k}`, label: `Origin ${label(k)}` })),
];
const triggers = wh.properties.events.items.enum
	.filter((e) => e !== '*')
	.map((event) => {
		const s = exists(`event.${event}.json`) ? load(`event.${event}.json`) : { properties: {}, examples: [{}] };
		const data = s.examples?.[0] ?? {};
		return {
			event,
			key: event.replace(/\./g, '_'),
			noun: label(event.split('.')[0]),
			label: label(event),
			description: help(s.description) ?? `A ${event} event.`,
			sample: {
				id: '6d4a0356-fa6d-4fe7-9078-060a1859906c',
				type: event,
				time: data.timestamp ?? '2026-11-25T12:00:00Z',
				instance: 'sales',
				traceparent: `00-${data.traceId ?? '4bf92f3577b34da6a3ce929d0e0e4736'}-00f067aa0ba902b7-01`,
				origin: { platform: 'zapier', workflowId: '123456', workflowName: 'My Zap' },
				...data,
			},
			outputFields: [...envelopeFields, ...outputFieldsOf(s)],
		};
	});

const out = {
	$comment: `GENERATED by scripts/generate.js from ${path.relative(pkg, schemasDir)}/*.json — do not edit.`,
	authFields,
	instanceField,
	publish: {
		title: publish.title,
		description: help(publish.description.split('. ')[0]) + '.',
		typeField,
		fieldsByType,
		sample: publishOut.examples?.[0] ?? {},
		outputFields: outputFieldsOf(publishOut),
	},
	delete: {
		title: del.title,
		description: help(del.description),
		fields: deleteFields,
		sample: deleteOut.examples?.[0] ?? { messageId: '3EB0A1B2C3D4E5F6A7B8C9' },
		outputFields: outputFieldsOf(deleteOut),
	},
	originFields: Object.keys(origin.properties),
	triggers,
};
fs.mkdirSync(path.join(pkg, 'generated'), { recursive: true });
fs.writeFileSync(path.join(pkg, 'generated', 'schema.json'), JSON.stringify(out, null, 2) + '\n');
console.log(`generate: generated/schema.json from ${schemasDir} (${types.length} status types, ${triggers.length} triggers)`);
