import { createHmac, timingSafeEqual } from 'node:crypto';

/** How far a delivery's webhook-timestamp may be from now (Standard Webhooks' default). */
export const TOLERANCE_SECONDS = 5 * 60;

/**
 * verifySignature checks a delivery signed per Standard Webhooks: the
 * `webhook-signature` header holds space-separated `v1,<base64>` entries, each
 * an HMAC-SHA256 of `${webhook-id}.${webhook-timestamp}.${body}` keyed with the
 * base64 bytes after `whsec_`; one matching entry is enough (statusflow signs
 * with the previous secret too while a rotation's grace lasts). The timestamp
 * must be within TOLERANCE_SECONDS of now. It throws on any failure.
 *
 * (A runtime dependency on the `standardwebhooks` package is not allowed in an
 * n8n community package; the tests check this against that package.)
 */
export function verifySignature(
	secret: string,
	body: string | Buffer,
	headers: Record<string, unknown>,
	nowSeconds = Math.floor(Date.now() / 1000),
): void {
	const h = (name: string): string => {
		for (const [k, v] of Object.entries(headers)) {
			if (k.toLowerCase() !== name) continue;
			if (typeof v === 'string') return v;
			if (Array.isArray(v) && typeof v[0] === 'string') return v[0];
		}
		return '';
	};
	const id = h('webhook-id');
	const timestamp = h('webhook-timestamp');
	const signature = h('webhook-signature');
	if (!id || !timestamp || !signature) throw new Error('Missing required headers');
	if (!secret) throw new Error('No signing secret: re-activate the workflow');
	const ts = Number(timestamp);
	if (!/^\d+$/.test(timestamp) || !Number.isSafeInteger(ts)) throw new Error('Invalid Signature Headers');
	if (ts < nowSeconds - TOLERANCE_SECONDS) throw new Error('Message timestamp too old');
	if (ts > nowSeconds + TOLERANCE_SECONDS) throw new Error('Message timestamp too new');
	const key = Buffer.from(secret.startsWith('whsec_') ? secret.slice('whsec_'.length) : secret, 'base64');
	const expected = createHmac('sha256', key)
		.update(`${id}.${timestamp}.`)
		.update(typeof body === 'string' ? Buffer.from(body, 'utf8') : body)
		.digest();
	for (const entry of signature.split(' ')) {
		const [version, sig] = entry.split(',', 2);
		if (version !== 'v1' || !sig) continue;
		const got = Buffer.from(sig, 'base64');
		if (got.length === expected.length && timingSafeEqual(got, expected)) return;
	}
	throw new Error('No matching signature found');
}
