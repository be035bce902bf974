#!/usr/bin/env node
// Generates generated/schema.ts — every n8n parameter of the Statusflow nodes
// and credential — from statusflow's JSON Schemas (the repository's schemas/
// folder, or STATUSFLOW_SCHEMAS_DIR). Nothing in generated/ is edited by
// hand: `npm run build` runs this first, and generated/ is not committed.
//
// Mapping (the same rules as the server's nodes/render_n8n.go):
// - a schema property becomes a parameter; `enum` → options (a picker), a
//   `#RRGGBB` pattern → color (a colour picker), boolean → boolean, number →
//   number, array → string (JSON array or comma separated, coerced by the node);
// - status.publish.input.json's `allOf` if/then branches say for which
//   `type`s a property applies and is required; a property no branch names
//   applies to every type;
// - properties required for some type are top-level parameters; the rest go
//   in the "Additional Fields" collection (unset = not sent).
import { readFileSync, readdirSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const pkg = path.resolve(here, '..');
const schemasDir = path.resolve(process.env.STATUSFLOW_SCHEMAS_DIR || path.join(pkg, '..', '..', 'schemas'));
if (!existsSync(path.join(schemasDir, 'status.publish.input.json'))) {
	console.error(`generate: no schemas in ${schemasDir} (set STATUSFLOW_SCHEMAS_DIR)`);
	process.exit(1);
}
const load = (name) => JSON.parse(readFileSync(path.join(schemasDir, name), 'utf8'));

const words = { url: 'URL', id: 'ID', jid: 'JID', mime: 'MIME' };
// label turns a schema name or enum value into an n8n display name:
// mediaUrl → "Media URL", sans-serif → "Sans Serif".
function label(s) {
	return s
		.replace(/([a-z0-9])([A-Z])/g, '$1 $2')
		.split(/[\s_.-]+/)
		.filter(Boolean)
		.map((w) => words[w.toLowerCase()] ?? w[0].toUpperCase() + w.slice(1).toLowerCase())
		.join(' ');
}
// sentence makes a schema description an n8n description: no markdown
// backticks, ends with a period.
function sentence(s) {
	if (!s) return undefined;
	s = s.replace(/`/g, '').trim();
	return /[.!?]$/.test(s) ? s : s + '.';
}
const byName = (a, b) => a.name.localeCompare(b.name);

const COLOR = /^\^#\(/;

// branchTypes returns the `type` values an if/then branch applies to.
function branchTypes(br) {
	const t = br.if?.properties?.type;
	if (!t) return [];
	return t.const !== undefined ? [t.const] : t.enum ?? [];
}

// parameter maps one schema property (merged with what branches add) to an
// n8n parameter without displayOptions.
function parameter(name, prop, extra = {}) {
	const p = { displayName: label(name), name };
	const merged = { ...prop, ...extra };
	const enumValues = merged.enum;
	if (enumValues) {
		p.type = 'options';
		p.options = enumValues.map((v) => ({ name: label(v), value: v })).sort(byName);
		p.default = merged.default ?? merged.examples?.[0] ?? enumValues[0];
	} else if (merged.type === 'boolean') {
		p.type = 'boolean';
		p.default = merged.default ?? false;
	} else if (merged.type === 'number' || merged.type === 'integer') {
		p.type = 'number';
		p.default = merged.default ?? 0;
		const to = {};
		if (merged.minimum !== undefined) to.minValue = merged.minimum;
		if (merged.maximum !== undefined) to.maxValue = merged.maximum;
		if (merged.type === 'number') to.numberPrecision = 2;
		p.typeOptions = to;
	} else if (merged.type === 'string' && merged.pattern && COLOR.test(merged.pattern)) {
		p.type = 'color';
		p.default = merged.default ?? merged.examples?.[0] ?? '';
	} else {
		p.type = 'string';
		p.default = merged.default ?? '';
		if (merged.type === 'array') {
			const it = merged.items ?? {};
			p.placeholder = `JSON array or comma separated list of ${merged.minItems ?? ''} ${it.type ?? 'value'}s`.replace(/\s+/g, ' ');
		} else if (merged.examples?.[0]) {
			p.placeholder = String(merged.examples[0]);
		}
	}
	const d = sentence(merged.description);
	if (d) p.description = d;
	return p;
}

// --- status.publish -------------------------------------------------------
const publish = load('status.publish.input.json');
const types = publish.properties.type.enum;
// For each property: the types it applies to, the types that require it, and
// per type what the branch adds (enum, pattern, description).
const applies = {};
const requiredFor = {};
const perType = {};
for (const name of Object.keys(publish.properties)) {
	applies[name] = new Set();
	requiredFor[name] = new Set();
	perType[name] = {};
}
const named = new Set();
for (const br of publish.allOf ?? []) {
	for (const name of Object.keys(br.then?.properties ?? {})) named.add(name);
}
for (const name of Object.keys(publish.properties)) {
	if (!named.has(name)) types.forEach((t) => applies[name].add(t));
}
for (const br of publish.allOf ?? []) {
	const ts = branchTypes(br);
	for (const [name, add] of Object.entries(br.then?.properties ?? {})) {
		for (const t of ts) {
			applies[name].add(t);
			if (add && typeof add === 'object') {
				const { 'x-errors': _ignored, ...rest } = add;
				perType[name][t] = { ...(perType[name][t] ?? {}), ...rest };
			}
		}
	}
	for (const name of br.then?.required ?? []) ts.forEach((t) => requiredFor[name].add(t));
}
for (const name of publish.required ?? []) types.forEach((t) => requiredFor[name].add(t));

const OP_PUBLISH = 'status.publish';
const OP_DELETE = 'status.delete';

// Top-level parameters: the type, then the fields some type requires, one
// parameter per group of types that share their rendering.
const publishProperties = [];
const typeParam = parameter('type', publish.properties.type);
typeParam.default = types[0];
typeParam.displayOptions = { show: { operation: [OP_PUBLISH] } };
publishProperties.push(typeParam);

const fieldKinds = {};
const additional = [];
for (const [name, prop] of Object.entries(publish.properties)) {
	if (name === 'type') continue;
	if (prop.type === 'array') fieldKinds[name] = 'array';
	const ts = types.filter((t) => applies[name].has(t));
	if (requiredFor[name].size > 0) {
		// group the types by how the field renders for them
		const groups = new Map();
		for (const t of ts) {
			const p = parameter(name, prop, perType[name][t]);
			if (requiredFor[name].has(t)) p.required = true;
			const key = JSON.stringify(p);
			if (!groups.has(key)) groups.set(key, { p, types: [] });
			groups.get(key).types.push(t);
		}
		for (const { p, types: gts } of groups.values()) {
			p.displayOptions = { show: { operation: [OP_PUBLISH], type: gts } };
			publishProperties.push(p);
		}
	} else {
		// one option of the collection; if a branch constrains it (enum,
		// pattern), the first constraining branch gives its rendering.
		const t = ts.find((x) => Object.keys(perType[name][x] ?? {}).length > 0) ?? ts[0];
		const p = parameter(name, prop, perType[name][t]);
		if (ts.length < types.length) p.displayOptions = { show: { '/type': ts } };
		additional.push(p);
	}
}
publishProperties.push({
	displayName: 'Additional Fields',
	name: 'additionalFields',
	type: 'collection',
	placeholder: 'Add Field',
	default: {},
	displayOptions: { show: { operation: [OP_PUBLISH] } },
	options: additional.sort((a, b) => a.displayName.localeCompare(b.displayName)),
});

// --- status.delete --------------------------------------------------------
const del = load('status.delete.input.json');
const deleteProperties = Object.entries(del.properties).map(([name, prop]) => {
	const p = parameter(name, prop);
	if ((del.required ?? []).includes(name)) p.required = true;
	p.displayOptions = { show: { operation: [OP_DELETE] } };
	return p;
});

// --- operations, instance, origin -----------------------------------------
const operations = [
	{ name: 'Publish', value: OP_PUBLISH, action: publish.title, description: sentence(publish.title) },
	{ name: 'Delete', value: OP_DELETE, action: del.title, description: sentence(del.title) },
].sort(byName);

const exec = load('execute.input.json');
const instanceProperty = {
	...parameter('instance', exec.properties.instance),
	required: true,
	placeholder: 'sales',
};
const origin = load('origin.json');
const originFields = Object.keys(origin.properties);

// --- credential -----------------------------------------------------------
const cred = load('credential.statusflow.json');
const credentialProperties = Object.entries(cred.properties).map(([name, prop]) => {
	const p = parameter(name, prop);
	if ((cred.required ?? []).includes(name)) p.required = true;
	if (prop.writeOnly) p.typeOptions = { password: true };
	delete p.placeholder;
	return p;
});

// --- trigger --------------------------------------------------------------
const wh = load('webhook.config.input.json');
const eventTypes = wh.properties.events.items.enum.filter((e) => e !== '*');
const eventOptions = eventTypes
	.map((e) => {
		const file = `event.${e}.json`;
		const s = existsSync(path.join(schemasDir, file)) ? load(file) : {};
		return { name: label(e), value: e, description: sentence(s.description) ?? `The ${e} event.` };
	})
	.sort(byName);
const eventSamples = {};
for (const f of readdirSync(schemasDir).filter((f) => /^event\..+\.json$/.test(f))) {
	const s = load(f);
	eventSamples[s.title ?? f.slice(6, -5)] = s.examples?.[0] ?? {};
}
const triggerProperties = [
	{ ...instanceProperty },
	{
		displayName: 'Events',
		name: 'events',
		type: 'multiOptions',
		required: true,
		default: [eventTypes.includes('status.published') ? 'status.published' : eventTypes[0]],
		description: sentence(wh.properties.events.description.replace(/; empty.*$/, '')),
		options: eventOptions,
	},
];

const out = `// GENERATED by scripts/generate.mjs from ${path.relative(pkg, schemasDir) || '.'}/*.json — do not edit.
import type { INodeProperties, INodePropertyOptions } from 'n8n-workflow';

export const OP_PUBLISH = ${JSON.stringify(OP_PUBLISH)};
export const OP_DELETE = ${JSON.stringify(OP_DELETE)};
export const operations: INodePropertyOptions[] = ${JSON.stringify(operations, null, '\t')};
export const instanceProperty: INodeProperties = ${JSON.stringify(instanceProperty, null, '\t')};
export const publishProperties: INodeProperties[] = ${JSON.stringify(publishProperties, null, '\t')};
export const deleteProperties: INodeProperties[] = ${JSON.stringify(deleteProperties, null, '\t')};
/** Input fields whose value the node must coerce (array: JSON or comma separated). */
export const publishFieldKinds: Record<string, 'array'> = ${JSON.stringify(fieldKinds)};
/** The media types of status.publish (those whose branch requires mediaUrl). */
export const mediaTypes: string[] = ${JSON.stringify(types.filter((t) => requiredFor.mediaUrl?.has(t)))};
export const originFields: string[] = ${JSON.stringify(originFields)};
export const credentialProperties: INodeProperties[] = ${JSON.stringify(credentialProperties, null, '\t')};
export const credentialTitle = ${JSON.stringify(cred.title)};
export const triggerProperties: INodeProperties[] = ${JSON.stringify(triggerProperties, null, '\t')};
export const eventSamples: Record<string, object> = ${JSON.stringify(eventSamples, null, '\t')};
export const publishDescription = ${JSON.stringify(sentence(publish.description.split('. ')[0]))};
`;
mkdirSync(path.join(pkg, 'generated'), { recursive: true });
writeFileSync(path.join(pkg, 'generated', 'schema.ts'), out);
console.log(`generate: generated/schema.ts from ${schemasDir} (${publishProperties.length} publish, ${deleteProperties.length} delete, ${eventOptions.length} events)`);
