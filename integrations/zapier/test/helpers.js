'use strict';
// A statusflow server on loopback for the tests: the real binary
// (STATUSFLOW_BIN), a fresh data dir, a sandbox instance; and a loopback HTTP
// server recording requests (webhook receiver, media).
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function freePort() {
	return new Promise((resolve, reject) => {
		const s = net.createServer();
		s.once('error', reject);
		s.listen(0, '127.0.0.1', () => {
			const { port } = s.address();
			s.close(() => resolve(port));
		});
	});
}

async function startStatusflow(instance = 'sales') {
	const bin = process.env.STATUSFLOW_BIN;
	if (!bin || !fs.existsSync(bin)) throw new Error(`STATUSFLOW_BIN must name the statusflow binary (got ${bin})`);
	const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sf-zapier-test-'));
	const port = await freePort();
	const natsPort = await freePort();
	const token = 'sf_test_' + Math.random().toString(36).slice(2);
	const base = `http://127.0.0.1:${port}`;
	const log = path.join(dataDir, 'server.log');
	const fd = fs.openSync(log, 'a');
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
		stdio: ['ignore', fd, fd],
	});
	let exited = null;
	child.on('exit', (code) => (exited = code));
	for (let i = 0; ; i++) {
		if (exited !== null) throw new Error(`statusflow exited with ${exited}; see ${log}`);
		try {
			if ((await fetch(base + '/healthz')).ok) break;
		} catch (e) {
			/* not yet */
		}
		if (i > 150) throw new Error(`statusflow did not start; see ${log}`);
		await sleep(200);
	}
	const call = async (method, p, body) => {
		const res = await fetch(base + p, {
			method,
			headers: { token, 'content-type': 'application/json' },
			body: body === undefined ? undefined : JSON.stringify(body),
		});
		return { status: res.status, json: await res.json() };
	};
	const r = await call('POST', '/api/instance/new', { name: instance, engine: 'sandbox' });
	if (r.status !== 201) throw new Error(`create instance: ${r.status} ${JSON.stringify(r.json)}`);
	return {
		base,
		token,
		instance,
		dataDir,
		log,
		api: call,
		stop: async () => {
			if (exited !== null) return;
			child.kill('SIGTERM');
			for (let i = 0; i < 50 && exited === null; i++) await sleep(100);
			if (exited === null) child.kill('SIGKILL');
		},
	};
}

async function loopbackServer(routes = {}) {
	const requests = [];
	const server = http.createServer((req, res) => {
		const chunks = [];
		req.on('data', (c) => chunks.push(c));
		req.on('end', () => {
			requests.push({ method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks) });
			const r = routes[req.url];
			if (r) res.writeHead(200, { 'content-type': r.type, 'content-length': r.body.length }).end(r.body);
			else res.writeHead(req.method === 'POST' ? 204 : 404).end();
		});
	});
	await new Promise((r) => server.listen(0, '127.0.0.1', r));
	return { url: `http://127.0.0.1:${server.address().port}`, requests, close: () => new Promise((r) => server.close(r)) };
}

async function waitFor(fn, ms = 10000) {
	for (let t = 0; t < ms; t += 100) {
		const v = fn();
		if (v) return v;
		await sleep(100);
	}
	return undefined;
}

module.exports = { startStatusflow, loopbackServer, waitFor, sleep };
