// Calls a running statusflow through the TypeScript client
// @hey-api/openapi-ts generates from its /openapi.json (scripts/clients.sh
// generates ./client): creates a sandbox instance, publishes a text status
// with the instance's one-time token, reads the event log of its trace.
//   node dist/check.js http://127.0.0.1:8080 sfa_…
import { client } from './client/client.gen';
import { getApiEventsLogInstance, postApiInstanceNew, postApiMessageStatusInstance } from './client/sdk.gen';

// Node's process, without installing @types/node.
declare const process: { argv: string[]; exit(code: number): never };

async function main(base: string, account: string): Promise<void> {
	let token = account;
	// The document's first security scheme is the `token` header.
	client.setConfig({ baseUrl: base, auth: () => token });

	const name = `ts${Date.now()}`;
	const created = await postApiInstanceNew({ body: { name, engine: 'sandbox' } });
	if (created.response.status !== 201 || !created.data) {
		throw new Error(`create: ${created.response.status} ${JSON.stringify(created.error)}`);
	}
	const instanceToken: string | undefined = created.data.instance.token;
	if (!instanceToken) throw new Error('create: no instance token');
	token = instanceToken;

	const pub = await postApiMessageStatusInstance({ path: { instance: name }, body: { type: 'text', message: 'hello from TypeScript' } });
	if (!pub.data || pub.response.status !== 200) {
		throw new Error(`publish: ${pub.response.status} ${JSON.stringify(pub.error)}`);
	}
	const { messageId, traceId } = pub.data.data;

	for (let i = 0; i < 50; i++) {
		const log = await getApiEventsLogInstance({ path: { instance: name }, query: { traceId } });
		if (!log.data) throw new Error(`event log: ${log.response.status} ${JSON.stringify(log.error)}`);
		if (log.data.events.some((e) => e.type === 'status.published' && e.data.messageId === messageId)) {
			console.log(`TypeScript client: instance ${name}, message ${messageId}, ${log.data.events.length} events in trace ${traceId}`);
			return;
		}
		await new Promise((r) => setTimeout(r, 100));
	}
	throw new Error(`event log: no status.published for ${messageId}`);
}

main(process.argv[2], process.argv[3]).catch((err) => {
	console.error('TypeScript client:', err);
	process.exit(1);
});
