// Test harness shared by the package's tests: a statusflow server on
// loopback (a real binary, a fresh data dir, a sandbox instance), free ports,
// a loopback HTTP server for media and deliveries, small assertions.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, existsSync, openSync } from 'node:fs';
import { createServer } from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export function freePort() {
	return new Promise((resolve, reject) => {
		const s = net.createServer();
		s.once('error', reject);
		s.listen(0, '127.0.0.1', () => {
			const { port } = s.address();
			s.close(() => resolve(port));
		});
	});
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export async function api(base, token, method, p, body) {
	const res = await fetch(base + p, {
		method,
		headers: { token, 'content-type': 'application/json', accept: 'application/json' },
		body: body === undefined ? undefined : JSON.stringify(body),
	});
	const text = await res.text();
	let json;
	try {
		json = JSON.parse(text);
	} catch {
		json = { raw: text };
	}
	return { status: res.status, json };
}

// startStatusflow runs the server binary (STATUSFLOW_BIN) on a free port with
// a fresh data dir and creates the sandbox instance `instance`.
export async function startStatusflow({ bin = process.env.STATUSFLOW_BIN, instance = 'sales' } = {}) {
	if (!bin || !existsSync(bin)) throw new Error(`STATUSFLOW_BIN must name the statusflow binary (got ${bin})`);
	const dataDir = mkdtempSync(path.join(os.tmpdir(), 'sf-node-test-'));
	const port = await freePort();
	const natsPort = await freePort();
	const token = 'sf_test_' + Math.random().toString(36).slice(2);
	const base = `http://127.0.0.1:${port}`;
	const log = path.join(dataDir, 'server.log');
	const child = spawn(bin, [], {
		env: {
			...process.env,
			STATUSFLOW_DATA_DIR: dataDir,
			STATUSFLOW_ADDR: `127.0.0.1:${port}`,
			STATUSFLOW_ACCOUNT_TOKEN: token,
			STATUSFLOW_MEDIA_ALLOW_PRIVATE: 'true',
			STATUSFLOW_WEBHOOK_ALLOW_PRIVATE: 'true',
			STATUSFLOW_NATS_LISTEN: `127.0.0.1:${natsPort}`,
		},
		stdio: ['ignore', openSync(log, 'a'), openSync(log, 'a')],
	});
	let exited = null;
	child.on('exit', (code) => (exited = code));
	for (let i = 0; ; i++) {
		if (exited !== null) throw new Error(`statusflow exited with ${exited}; see ${log}`);
		try {
			const r = await fetch(base + '/healthz');
			if (r.ok) break;
		} catch {
			/* not yet */
		}
		if (i > 150) throw new Error(`statusflow did not start; see ${log}`);
		await sleep(200);
	}
	const r = await api(base, token, 'POST', '/api/instance/new', { name: instance, engine: 'sandbox' });
	if (r.status !== 201) throw new Error(`create instance: ${r.status} ${JSON.stringify(r.json)}`);
	return {
		base,
		token,
		instance,
		dataDir,
		log,
		api: (method, p, body) => api(base, token, method, p, body),
		stop: async () => {
			if (exited !== null) return;
			child.kill('SIGTERM');
			for (let i = 0; i < 50 && exited === null; i++) await sleep(100);
			if (exited === null) child.kill('SIGKILL');
		},
	};
}

// loopbackServer serves `routes` (path → {type, body}) and records every
// request (method, url, headers, raw body) for the tests.
export async function loopbackServer(routes = {}, onRequest) {
	const requests = [];
	const server = createServer((req, res) => {
		const chunks = [];
		req.on('data', (c) => chunks.push(c));
		req.on('end', async () => {
			const rec = { method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks) };
			requests.push(rec);
			if (onRequest) {
				await onRequest(rec, res);
				return;
			}
			const r = routes[req.url];
			if (!r) {
				res.writeHead(404).end();
				return;
			}
			res.writeHead(200, { 'content-type': r.type, 'content-length': r.body.length }).end(r.body);
		});
	});
	await new Promise((r) => server.listen(0, '127.0.0.1', r));
	return {
		url: `http://127.0.0.1:${server.address().port}`,
		requests,
		close: () => new Promise((r) => server.close(r)),
	};
}

export function makeJpeg(dir) {
	const file = path.join(dir, 'testsrc.jpg');
	execFileSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc=size=320x240', '-frames:v', '1', file]);
	return file;
}

export function check(cond, msg) {
	if (!cond) throw new Error('assertion failed: ' + msg);
	console.log('  ok -', msg);
}
