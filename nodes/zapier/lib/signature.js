'use strict';
const { createHmac, timingSafeEqual } = require('node:crypto');

/** How far a delivery's webhook-timestamp may be from now (Standard Webhooks' default). */
const TOLERANCE_SECONDS = 5 * 60;

/**
 * verifySignature checks a delivery signed per Standard Webhooks: the
 * `webhook-signature` header holds space-separated `v1,<base64>` entries, each
 * an HMAC-SHA256 of `${webhook-id}.${webhook-timestamp}.${body}` keyed with the
 * base64 bytes after `whsec_`; one matching entry is enough (statusflow also
 * signs with the previous secret during a rotation's grace). The timestamp
 * must be within TOLERANCE_SECONDS of now. Throws on any failure. (Zapier apps
 * may depend on packages; this one is small and the tests check it against the
 * `standardwebhooks` package.)
 */
function verifySignature(secret, body, headers, nowSeconds = Math.floor(Date.now() / 1000)) {
	const h = (name) => {
		for (const [k, v] of Object.entries(headers || {})) {
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
	if (!secret) throw new Error('No signing secret: turn the Zap off and on again');
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

module.exports = { verifySignature, TOLERANCE_SECONDS };
