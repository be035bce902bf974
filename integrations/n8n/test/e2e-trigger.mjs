#!/usr/bin/env node
// The Statusflow Trigger in a real n8n (`n8n start` on loopback): activating
// the workflow registers a webhook subscription on statusflow; a published
// status is delivered, signed, to n8n and starts an execution; deliveries with
// a bad or no signature are refused with 401; deactivating the workflow
// deletes the subscription.
//
// Needs: STATUSFLOW_BIN, N8N_HOME (as test/e2e.mjs), the sqlite3 CLI for the
// execution check (skipped without it).
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { check, freePort, sleep, startStatusflow } from './harness.mjs';

const pkg = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const n8nBin = path.join(process.env.N8N_HOME ?? '', 'node_modules', '.bin', 'n8n');
if (!existsSync(n8nBin)) throw new Error(`N8N_HOME must hold an n8n install (got ${process.env.N8N_HOME})`);

const work = mkdtempSync(path.join(os.tmpdir(), 'sf-n8n-trigger-'));
const sf = await startStatusflow();
const port = await freePort();
const n8nUrl = `http://127.0.0.1:${port}`;
const env = {
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
	N8N_PORT: String(port),
	N8N_LISTEN_ADDRESS: '127.0.0.1',
	N8N_HOST: '127.0.0.1',
	N8N_PROTOCOL: 'http',
	WEBHOOK_URL: `${n8nUrl}/`,
	N8N_SECURE_COOKIE: 'false',
	EXECUTIONS_DATA_SAVE_ON_SUCCESS: 'all',
};
async function run(args, name) {
	const log = openSync(path.join(work, `${name}.log`), 'w');
	const child = spawn(n8nBin, args, { env, cwd: work, stdio: ['ignore', log, log] });
	return child;
}
async function runToEnd(args, name) {
	const child = await run(args, name);
	const code = await new Promise((r) => child.on('exit', r));
	if (code !== 0) throw new Error(`n8n ${args.join(' ')} exited ${code}; see ${path.join(work, name + '.log')}`);
}

const WF_ID = 'sfE2eTrigger0001';
const creds = [{ id: 'sfE2eCredential1', name: 'statusflow (loopback)', type: 'statusflowApi', data: { baseUrl: sf.base, token: sf.token } }];
const workflow = {
	id: WF_ID,
	name: 'statusflow e2e: trigger',
	active: false,
	settings: { executionOrder: 'v1' },
	nodes: [
		{
			id: '1b2c3d4e-0000-4000-8000-000000000001',
			name: 'Statusflow Trigger',
			type: 'CUSTOM.statusflowTrigger',
			typeVersion: 1,
			position: [0, 0],
			webhookId: '5f1d2a3b-4c5d-4e6f-8a9b-0c1d2e3f4a5b',
			parameters: { instance: { __rl: true, mode: 'list', value: sf.instance }, events: ['status.published'] },
			credentials: { statusflowApi: { id: creds[0].id, name: creds[0].name } },
		},
		{ id: '1b2c3d4e-0000-4000-8000-000000000002', name: 'Done', type: 'n8n-nodes-base.noOp', typeVersion: 1, position: [200, 0], parameters: {} },
	],
	connections: { 'Statusflow Trigger': { main: [[{ node: 'Done', type: 'main', index: 0 }]] } },
};

let n8n;
let failed = false;
let cookie = '';
const rest = async (method, p, body) => {
	const res = await fetch(n8nUrl + p, {
		method,
		headers: { 'content-type': 'application/json', cookie, 'browser-id': 'statusflow-e2e' },
		body: body === undefined ? undefined : JSON.stringify(body),
	});
	const set = res.headers.get('set-cookie');
	if (set) cookie = set.split(';')[0];
	return { status: res.status, json: await res.json().catch(() => ({})) };
};
const hooks = async () => (await sf.api('GET', `/api/events/getWebhook/${sf.instance}`)).json.webhooks ?? [];
try {
	writeFileSync(path.join(work, 'creds.json'), JSON.stringify(creds));
	writeFileSync(path.join(work, 'workflow.json'), JSON.stringify([workflow]));
	await runToEnd(['import:credentials', `--input=${path.join(work, 'creds.json')}`], 'import-credentials');
	await runToEnd(['import:workflow', `--input=${path.join(work, 'workflow.json')}`], 'import-workflow');
	n8n = await run(['start'], 'start');
	for (let i = 0; ; i++) {
		try {
			// /healthz answers before the REST API is mounted; /rest/settings is later.
			if ((await fetch(`${n8nUrl}/rest/settings`)).ok) break;
		} catch {
			/* not yet */
		}
		if (i > 300) throw new Error(`n8n did not start; see ${path.join(work, 'start.log')}`);
		await sleep(200);
	}
	// The controllers are mounted a little after the first routes; until then
	// the editor's fallback may answer 404, or 200 with its HTML page and no
	// session cookie. Retry until the setup answers with the session.
	let owner;
	for (let i = 0; i < 150; i++) {
		owner = await rest('POST', '/rest/owner/setup', { email: 'owner@statusflow.test', firstName: 'Status', lastName: 'Flow', password: 'Statusflow-e2e-1' });
		if (owner.status === 200 && cookie) break;
		if (owner.status === 400) {
			// set up by an earlier attempt whose answer was lost: log in
			owner = await rest('POST', '/rest/login', { emailOrLdapLoginId: 'owner@statusflow.test', password: 'Statusflow-e2e-1' });
			if (owner.status === 200 && cookie) break;
		}
		await sleep(200);
	}
	check(owner.status === 200 && cookie, `n8n owner set up (${owner.status})`);
	const wf = await rest('GET', `/rest/workflows/${WF_ID}`);
	const versionId = wf.json.data?.versionId;
	check(versionId, 'the imported workflow is in n8n');

	// Activation: the trigger registers its webhook subscription.
	const act = await rest('POST', `/rest/workflows/${WF_ID}/activate`, { versionId });
	check(act.status === 200 && act.json.data?.active === true, `workflow activated (${act.status} ${JSON.stringify(act.json).slice(0, 300)})`);
	const hook = (await hooks()).find((w) => w.label.startsWith(`n8n-${WF_ID}-`));
	check(hook && hook.url.startsWith(`${n8nUrl}/webhook/`) && hook.events.join() === 'status.published', `statusflow lists the subscription: ${JSON.stringify(hook)}`);

	// A published status starts an execution of the workflow.
	const origin = { platform: 'http', workflowId: 'publisher', executionId: 'run-1', nodeName: 'curl' };
	const pub = await sf.api('POST', '/api/nodes/status.publish/execute', { instance: sf.instance, input: { type: 'text', message: 'to the trigger' }, origin });
	check(pub.status === 200, `published a status (${pub.status})`);
	let delivered;
	for (let i = 0; i < 100 && !delivered; i++) {
		const ds = (await sf.api('GET', `/api/events/deliveries/${sf.instance}?webhook=${encodeURIComponent(hook.label)}`)).json.deliveries ?? [];
		delivered = ds.find((d) => JSON.stringify(d).includes('status.published') && /deliver|succe|sent/i.test(String(d.state)));
		if (!delivered) await sleep(200);
	}
	check(delivered, `statusflow delivered status.published to n8n (${JSON.stringify(delivered)?.slice(0, 300)})`);
	const db = path.join(env.N8N_USER_FOLDER, '.n8n', 'database.sqlite');
	let rows = '';
	let noSqlite = false;
	for (let i = 0; i < 50; i++) {
		try {
			rows = execFileSync('sqlite3', [db, `SELECT e.status || ' ' || d.data FROM execution_entity e JOIN execution_data d ON d.executionId = e.id WHERE e.workflowId = '${WF_ID}'`], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
		} catch (e) {
			if (e.code === 'ENOENT') {
				noSqlite = true;
				break;
			}
		}
		if (rows.startsWith('success') && rows.includes(pub.json.output.messageId)) break;
		await sleep(200);
	}
	if (noSqlite) console.log('  skip - n8n execution check (no sqlite3 CLI)');
	else check(rows.startsWith('success') && rows.includes(pub.json.output.messageId) && rows.includes('run-1'), `n8n ran (${rows.slice(0, 20)}…) the workflow with the event (messageId and publisher origin in its execution data)`);

	// Deliveries that are not signed with the subscription's secret are refused.
	const body = JSON.stringify({ type: 'status.published', data: { messageId: 'forged' } });
	const now = String(Math.floor(Date.now() / 1000));
	const forged = await fetch(hook.url, { method: 'POST', headers: { 'content-type': 'application/json', 'webhook-id': 'msg_forged', 'webhook-timestamp': now, 'webhook-signature': 'v1,' + Buffer.alloc(32).toString('base64') }, body });
	check(forged.status === 401, `a forged signature is refused by n8n (${forged.status})`);
	const unsigned = await fetch(hook.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
	check(unsigned.status === 401, `an unsigned delivery is refused by n8n (${unsigned.status})`);

	// Deactivation removes the subscription.
	const deact = await rest('POST', `/rest/workflows/${WF_ID}/deactivate`);
	check(deact.status === 200 && deact.json.data?.active === false, `workflow deactivated (${deact.status})`);
	check(!(await hooks()).some((w) => w.label === hook.label), 'statusflow no longer has the subscription');
	console.log('n8n trigger e2e: passed');
} catch (e) {
	failed = true;
	console.error(e.stack || String(e));
	console.error(`n8n trigger e2e: FAILED (work dir ${work}, server log ${sf.log})`);
} finally {
	if (n8n && n8n.exitCode === null) {
		n8n.kill('SIGTERM');
		for (let i = 0; i < 100 && n8n.exitCode === null && n8n.signalCode === null; i++) await sleep(100);
		if (n8n.exitCode === null && n8n.signalCode === null) n8n.kill('SIGKILL');
	}
	await sf.stop();
	if (!failed && !process.env.KEEP_TEST_DIRS) {
		rmSync(work, { recursive: true, force: true });
		rmSync(sf.dataDir, { recursive: true, force: true });
	}
}
process.exit(failed ? 1 : 0);
