import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * statusflow takes media by URL only (mediaUrl). To publish binary data from
 * a previous node, the Statusflow node serves the bytes itself for the length
 * of one call: a one-off HTTP server on `host` (port 0 = any free port) with
 * an unguessable path. The publish call is synchronous (the server fetches the
 * media before it answers), so the server is closed right after the call.
 * The statusflow server must be able to reach `publicBaseUrl`; a loopback or
 * LAN address needs STATUSFLOW_MEDIA_ALLOW_PRIVATE=true on the server.
 */
export interface ServedMedia {
	url: string;
	close: () => Promise<void>;
}

export async function serveOnce(
	data: Buffer,
	mimeType: string,
	host: string,
	port: number,
	publicBaseUrl: string,
	fileName?: string,
): Promise<ServedMedia> {
	const secret = randomBytes(24).toString('hex');
	const name = encodeURIComponent(fileName && fileName.length > 0 ? fileName : 'media');
	const path = `/${secret}/${name}`;
	const server = createServer((req, res) => {
		if (req.url !== path || (req.method !== 'GET' && req.method !== 'HEAD')) {
			res.writeHead(404).end();
			return;
		}
		res.writeHead(200, {
			'Content-Type': mimeType || 'application/octet-stream',
			'Content-Length': data.length,
			'Cache-Control': 'no-store',
		});
		res.end(req.method === 'HEAD' ? undefined : data);
	});
	await new Promise<void>((resolve, reject) => {
		server.once('error', reject);
		server.listen(port, host, () => resolve());
	});
	const addr = server.address() as AddressInfo;
	const base =
		publicBaseUrl && publicBaseUrl.length > 0
			? publicBaseUrl.replace(/\/+$/, '')
			: `http://${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}`;
	return {
		url: base.replace('{port}', String(addr.port)) + path,
		close: async () =>
			await new Promise<void>((resolve) => {
				server.closeAllConnections?.();
				server.close(() => resolve());
			}),
	};
}
