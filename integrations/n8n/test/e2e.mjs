#!/usr/bin/env node
// The package in a real n8n (../shared/recipes/n8n-headless.md): a workflow
// imported from JSON runs `n8n execute` and, through our node loaded with
// N8N_CUSTOM_EXTENSIONS, publishes on a sandbox instance of a real statusflow:
// a text status, an image status from a URL on loopback, an image status
// from binary data of a previous node (HTTP Request), then deletes the text
// status. The status records must carry the workflow's id and execution id.
//
// Needs: STATUSFLOW_BIN (server binary), N8N_HOME (folder with
// node_modules/.bin/n8n), ffmpeg; sqlite3 CLI optional (extra check).
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { check, loopbackServer, makeJpeg, startStatusflow } from './harness.mjs';

const pkg = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const n8nHome = process.env.N8N_HOME;
const n8nBin = n8nHome && path.join(n8nHome, 'node_modules', '.bin', 'n8n');
if (!n8nBin || !existsSync(n8nBin)) throw new Error(`N8N_HOME must hold an n8n install (got ${n8nHome})`);
if (!existsSync(path.join(pkg, 'dist', 'nodes', 'Statusflow', 'Statusflow.node.js'))) throw new Error('build the package first');

const work = mkdtempSync(path.join(os.tmpdir(), 'sf-n8n-e2e-'));
const sf = await startStatusflow();
const jpeg = readFileSync(makeJpeg(work));
const media = await loopbackServer({ '/testsrc.jpg': { type: 'image/jpeg', body: jpeg } });

// Is the server's media pipeline wired? (An image status needs it.) If the
// server says it is not configured, the image nodes are left out and the
// run says so loudly; any other media error fails the test.
const probe = await sf.api('POST', `/api/message/status/${sf.instance}`, { type: 'image', mediaUrl: `${media.url}/testsrc.jpg` });
const mediaReady = !/media pipeline is not configured/.test(probe.json?.error?.message ?? '');
if (!mediaReady) console.log(`  SKIP - image statuses: the server answered "${probe.json.error.message}"`);

const n8nEnv = {
	...process.env,
	N8N_USER_FOLDER: path.join(work, 'home'),
	N8N_ENCRYPTION_KEY: 'statusflow-e2e-fixed-key',
	N8N_DIAGNOSTICS_ENABLED: 'false',
	N8N_RUNNERS_ENABLED: 'false',
	// n8n pings its database every 2 s and exits when a ping takes over 5 s,
	// which a loaded CI machine can cause: ping once an hour instead.
	DB_PING_INTERVAL_SECONDS: '3600',
	N8N_EXPRESSION_ENGINE: 'legacy',
	N8N_ENFORCE_SETTINGS_FILE_PERMISSIONS: 'false',
	N8N_CUSTOM_EXTENSIONS: path.join(pkg, 'dist'),
	N8N_VERSION_NOTIFICATIONS_ENABLED: 'false',
	N8N_PERSONALIZATION_ENABLED: 'false',
};
// n8n exits with process.exit() and loses what it wrote to a pipe; its
// output goes to files instead. Asynchronous: this process serves the media.
let n8nRuns = 0;
async function n8n(...args) {
	const base = path.join(work, `n8n-${++n8nRuns}-${args[0].replace(/:/g, '-')}`);
	const out = openSync(base + '.out', 'w');
	const err = openSync(base + '.err', 'w');
	const child = spawn(n8nBin, args, { env: n8nEnv, cwd: work, stdio: ['ignore', out, err] });
	const timer = setTimeout(() => child.kill('SIGKILL'), 300_000);
	const [code, signal] = await new Promise((resolve) => child.on('exit', (c, sig) => resolve([c, sig])));
	clearTimeout(timer);
	closeSync(out);
	closeSync(err);
	const stdout = readFileSync(base + '.out', 'utf8');
	if (code !== 0) {
		throw new Error(`n8n ${args.join(' ')} exited ${code ?? signal}\n--- stdout\n${stdout}\n--- stderr\n${readFileSync(base + '.err', 'utf8')}`);
	}
	return stdout;
}

const WF_ID = 'sfE2eWorkflow001';
const WF_NAME = 'statusflow e2e: text and image statuses';
const credRef = { statusflowApi: { id: 'sfE2eCredential1', name: 'statusflow (loopback)' } };
const TYPE = 'CUSTOM.statusflow'; // N8N_CUSTOM_EXTENSIONS loads nodes as CUSTOM.<name>
const node = (id, name, x, parameters, extra = {}) => ({
	id,
	name,
	type: TYPE,
	typeVersion: 1,
	position: [x, 0],
	parameters,
	credentials: credRef,
	...extra,
});
const chain = mediaReady
	? ['Start', 'Text status', 'Image status', 'Fetch JPEG', 'Binary image status', 'Delete text status', 'Create instance', 'Instance state']
	: ['Start', 'Text status', 'Delete text status', 'Create instance', 'Instance state'];
// The instance picker's value as the editor stores it (a resource locator).
const pick = (name) => ({ __rl: true, mode: 'list', value: name, cachedResultName: name });
const workflow = {
	id: WF_ID,
	name: WF_NAME,
	active: false,
	settings: { executionOrder: 'v1' },
	nodes: [
		{ id: '0f0c1d9e-0000-4000-8000-000000000001', name: 'Start', type: 'n8n-nodes-base.manualTrigger', typeVersion: 1, position: [0, 0], parameters: {} },
		node('0f0c1d9e-0000-4000-8000-000000000002', 'Text status', 200, {
			operation: 'status.publish',
			instance: pick(sf.instance),
			type: 'text',
			message: '=Hello from {{$workflow.name}}',
			additionalFields: { backgroundColor: '#128C7E', font: 'serif', source: 'n8n-e2e' },
		}),
		node('0f0c1d9e-0000-4000-8000-000000000003', 'Image status', 400, {
			operation: 'status.publish',
			instance: sf.instance,
			type: 'image',
			mediaSource: 'url',
			mediaUrl: `${media.url}/testsrc.jpg`,
			message: 'An image from a URL',
		}),
		{
			id: '0f0c1d9e-0000-4000-8000-000000000004',
			name: 'Fetch JPEG',
			type: 'n8n-nodes-base.httpRequest',
			typeVersion: 4.2,
			position: [600, 0],
			parameters: { url: `${media.url}/testsrc.jpg`, options: { response: { response: { responseFormat: 'file' } } } },
		},
		node('0f0c1d9e-0000-4000-8000-000000000005', 'Binary image status', 800, {
			operation: 'status.publish',
			instance: sf.instance,
			type: 'image',
			mediaSource: 'binary',
			binaryPropertyName: 'data',
			message: 'An image from binary data',
		}),
		node('0f0c1d9e-0000-4000-8000-000000000006', 'Delete text status', 1000, {
			operation: 'status.delete',
			instance: { __rl: true, mode: 'name', value: sf.instance },
			messageId: "={{ $('Text status').item.json.messageId }}",
			additionalFields: { deleteForEveryone: true },
		}),
		node('0f0c1d9e-0000-4000-8000-000000000007', 'Create instance', 1200, {
			resource: 'instance',
			operation: 'instance.create',
			name: 'e2e-created',
			engine: 'sandbox',
		}),
		node('0f0c1d9e-0000-4000-8000-000000000008', 'Instance state', 1400, {
			resource: 'instance',
			operation: 'instance.state',
			instance: pick(sf.instance),
		}),
	],
	connections: Object.fromEntries(chain.slice(0, -1).map((n, i) => [n, { main: [[{ node: chain[i + 1], type: 'main', index: 0 }]] }])),
};
workflow.nodes = workflow.nodes.filter((n) => chain.includes(n.name));
const creds = [
	{
		id: credRef.statusflowApi.id,
		name: credRef.statusflowApi.name,
		type: 'statusflowApi',
		data: { baseUrl: sf.base, token: sf.token },
	},
];

let failed = false;

try {
	writeFileSync(path.join(work, 'workflow.json'), JSON.stringify([workflow], null, 2));
	writeFileSync(path.join(work, 'creds.json'), JSON.stringify(creds, null, 2));
	console.log('# n8n import:credentials, import:workflow');
	await n8n('import:credentials', `--input=${path.join(work, 'creds.json')}`);
	await n8n('import:workflow', `--input=${path.join(work, 'workflow.json')}`);
	console.log('# n8n execute');
	const out = await n8n('execute', `--id=${WF_ID}`, '--rawOutput');
	writeFileSync(path.join(work, 'run.json'), out);
	const run = JSON.parse(out.slice(out.indexOf('{')));
	const runData = run.data?.resultData?.runData ?? {};
	const err = run.data?.resultData?.error;
	check(!err, `the workflow ran without error${err ? ': ' + JSON.stringify(err).slice(0, 500) : ''}`);
	const first = (name) => runData[name]?.[0]?.data?.main?.[0]?.[0]?.json;
	const text = first('Text status');
	const image = first('Image status');
	const binary = first('Binary image status');
	const deleted = first('Delete text status');
	check(text?.messageId && text.messageType === 'text', `Text status output: ${JSON.stringify(text)}`);
	const published = [['text', text]];
	if (mediaReady) {
		check(image?.messageId && image.messageType === 'image', `Image status output: ${JSON.stringify(image)}`);
		check(binary?.messageId && binary.messageType === 'image', `Binary image status output: ${JSON.stringify(binary)}`);
		published.push(['image (URL)', image], ['image (binary)', binary]);
	}
	check(deleted?.messageId === text.messageId, `Delete text status output: ${JSON.stringify(deleted)}`);
	const created = first('Create instance');
	check(created?.name === 'e2e-created' && created.engine === 'sandbox' && created.token, `Instance → Create output: ${JSON.stringify({ ...created, token: created?.token ? '…' : undefined })}`);
	const listed = await sf.api('GET', '/api/instance/list');
	check((listed.json.instances ?? []).some((i) => i.name === 'e2e-created'), 'statusflow lists the instance the node created');
	const state = first('Instance state');
	check(state?.name === sf.instance && (state.status || state.connection), `Instance → Get State output: ${JSON.stringify(state)}`);
	const executionId = String(text.origin?.executionId ?? '');
	check(/^\d+$/.test(executionId), `the node output's origin carries the n8n execution id (${executionId})`);
	if (mediaReady) check(media.requests.some((r) => r.url === '/testsrc.jpg'), 'statusflow fetched the JPEG from the loopback server');

	// The sandbox records: all three statuses, with the node outputs' trace ids.
	const list = await sf.api('GET', `/api/sandbox/${sf.instance}/statuses`);
	const statuses = list.json.statuses ?? [];
	for (const [label, out] of published) {
		const rec = statuses.find((s) => s.messageId === out.messageId);
		check(rec && rec.type === out.messageType && rec.traceId === out.traceId, `sandbox record of the ${label} status, same traceId`);
		if (out.messageType === 'image') {
			check(rec.media?.mimetype === 'image/jpeg' && rec.media?.bytes > 0, `the ${label} status went through the media pipeline (${JSON.stringify(rec.media)})`);
		}
	}
	const textRec = statuses.find((s) => s.messageId === text.messageId);
	// the sandbox keeps the exact WhatsApp message: a text status is an extendedTextMessage
	check(textRec?.message?.extendedTextMessage?.text === `Hello from ${WF_NAME}`, 'the text came from an n8n expression ({{$workflow.name}})');
	check(textRec.source === 'n8n-e2e' && textRec.revoked === true, 'the text status has its source and was revoked by the delete node');
	const font = textRec.message?.extendedTextMessage?.font;
	check(font && font !== 'SYSTEM', `the font picker reached the WhatsApp message (serif → ${font})`);

	// The origin stored with every status: the event log (status.published
	// events carry it), and the statuses table when the sqlite3 CLI is here.
	const log = await sf.api('GET', `/api/events/log/${sf.instance}?limit=200`);
	const events = log.json.events ?? [];
	for (const [, out] of published) {
		const ev = events.find((e) => e.type === 'status.published' && e.data?.messageId === out.messageId);
		const o = ev?.origin ?? ev?.data?.origin ?? {};
		check(
			o.platform === 'n8n' && o.workflowId === WF_ID && o.workflowName === WF_NAME && o.executionId === executionId && o.nodeName,
			`status.published of ${out.messageId} carries the origin ${JSON.stringify(o)}`,
		);
	}
	let sqlite = '';
	try {
		sqlite = execFileSync('sqlite3', ['-json', path.join(sf.dataDir, 'statusflow.db'), 'SELECT message_id, origin FROM statuses'], { encoding: 'utf8' });
	} catch (e) {
		console.log(`  skip - statuses table check (sqlite3 CLI: ${e.code ?? e.message})`);
	}
	if (sqlite) {
		const rows = JSON.parse(sqlite || '[]');
		for (const [, out] of published) {
			const row = rows.find((r) => r.message_id === out.messageId);
			const o = row ? JSON.parse(row.origin) : {};
			check(o.workflowId === WF_ID && o.executionId === executionId, `statuses.origin of ${out.messageId}: ${row?.origin}`);
		}
	}
	// The execution id is n8n's own: its database has that execution of this workflow.
	try {
		const ids = execFileSync('sqlite3', [path.join(n8nEnv.N8N_USER_FOLDER, '.n8n', 'database.sqlite'), `SELECT id FROM execution_entity WHERE workflowId = '${WF_ID}'`], { encoding: 'utf8' });
		check(ids.trim().split('\n').includes(executionId), `n8n's execution_entity has execution ${executionId} of ${WF_ID}`);
	} catch (e) {
		if (e.message.startsWith('assertion failed')) throw e;
		console.log(`  skip - n8n execution table check (sqlite3 CLI: ${e.code ?? e.message})`);
	}
	console.log(`n8n e2e: passed${mediaReady ? '' : ' WITHOUT image statuses (server media pipeline not configured)'} (work dir ${work})`);
} catch (e) {
	failed = true;
	console.error(e.stack || String(e));
	console.error(`n8n e2e: FAILED (work dir ${work}, server log ${sf.log})`);
} finally {
	await media.close();
	await sf.stop();
	if (!failed && !process.env.KEEP_TEST_DIRS) {
		rmSync(work, { recursive: true, force: true });
		rmSync(sf.dataDir, { recursive: true, force: true });
	}
}
process.exit(failed ? 1 : 0);
