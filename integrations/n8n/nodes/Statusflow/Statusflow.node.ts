import type {
	IDataObject,
	IExecuteFunctions,
	INodeExecutionData,
	INodeProperties,
	INodeType,
	INodeTypeDescription,
} from 'n8n-workflow';
import { NodeConnectionTypes, NodeOperationError } from 'n8n-workflow';

import {
	actionProperties,
	actions,
	instanceProperty,
	operations,
	resources,
	type GeneratedAction,
} from './generated';
import { serveOnce, type ServedMedia } from './binary';
import { CREDENTIAL, statusflowRequest } from './transport';

// The resources, operations and their parameters come from the node
// catalog through the server's renderer (generated.ts, written by
// `go run ./cmd/nodegen`); this file adds what the API has no field for and
// turns parameters back into a node input.

// The parameters of the node that the API has no field for: where media
// comes from (a URL, or binary data of a previous node that this node serves
// for the length of the call; see binary.ts).
const mediaSource = (a: GeneratedAction): INodeProperties => ({
	displayName: 'Media Source',
	name: 'mediaSource',
	type: 'options',
	noDataExpression: true,
	options: [
		{
			name: 'URL',
			value: 'url',
			description: 'Statusflow downloads the media from a URL',
		},
		{
			name: 'Binary Data',
			value: 'binary',
			description:
				'Binary data of a previous node, served by this node to statusflow for the length of the call',
		},
	],
	default: 'url',
	displayOptions: mediaShow(a),
});

function mediaShow(a: GeneratedAction, extra: IDataObject = {}) {
	return {
		show: {
			resource: [a.resource],
			operation: [a.id],
			[a.discriminator ?? 'type']: a.media ?? [],
			...extra,
		},
	} as INodeProperties['displayOptions'];
}

const binaryFields = (a: GeneratedAction): INodeProperties[] => [
	{
		displayName: 'Input Binary Field',
		name: 'binaryPropertyName',
		type: 'string',
		default: 'data',
		required: true,
		hint: 'The name of the input binary field containing the media',
		displayOptions: mediaShow(a, { mediaSource: ['binary'] }),
	},
	{
		displayName: 'Binary Serving',
		name: 'binaryServing',
		type: 'collection',
		placeholder: 'Add Option',
		default: {},
		description:
			'Statusflow fetches binary media from a short-lived HTTP server that this node opens on the n8n host. The statusflow server must reach it (a private address needs STATUSFLOW_MEDIA_ALLOW_PRIVATE=true on the server).',
		displayOptions: mediaShow(a, { mediaSource: ['binary'] }),
		options: [
			{
				displayName: 'Listen Address',
				name: 'host',
				type: 'string',
				default: '127.0.0.1',
				description: 'Address of the n8n host the short-lived server binds to',
			},
			{
				displayName: 'Listen Port',
				name: 'port',
				type: 'number',
				default: 0,
				description: 'Port of the short-lived server; 0 picks a free one',
			},
			{
				displayName: 'Public Base URL',
				name: 'publicBaseUrl',
				type: 'string',
				default: '',
				placeholder: 'http://n8n.internal:{port}',
				description:
					'How statusflow reaches the short-lived server ({port} is replaced by its port); empty: http://listen-address:port',
			},
		],
	},
];

const actionOf = (id: string): GeneratedAction | undefined => actions.find((a) => a.id === id);

// The generated properties, with a required mediaUrl shown only for the URL
// source, preceded by the media source and followed by the binary fields.
function withMediaSource(props: INodeProperties[]): INodeProperties[] {
	const out: INodeProperties[] = [];
	for (const p of props) {
		const op = p.displayOptions?.show?.operation?.[0];
		const a = typeof op === 'string' ? actionOf(op) : undefined;
		if (p.name === 'mediaUrl' && p.required && a?.media?.length) {
			out.push(mediaSource(a), {
				...p,
				displayOptions: { show: { ...(p.displayOptions?.show ?? {}), mediaSource: ['url'] } },
			});
			out.push(...binaryFields(a));
			continue;
		}
		out.push(p);
	}
	return out;
}

// coerce turns the text of a JSON parameter (a list, an object) into its value;
// a list may also be given comma separated.
function coerce(a: GeneratedAction, name: string, value: unknown): unknown {
	if (!a.json.includes(name) || typeof value !== 'string') return value;
	const s = value.trim();
	if (s.startsWith('[') || s.startsWith('{')) return JSON.parse(s) as unknown;
	return s
		.split(/[\s,]+/)
		.filter((x) => x !== '')
		.map(Number);
}

const empty = (v: unknown) => v === '' || v === undefined || v === null;

export class Statusflow implements INodeType {
	description: INodeTypeDescription = {
		displayName: 'Statusflow',
		name: 'statusflow',
		icon: { light: 'file:statusflow.svg', dark: 'file:statusflow.dark.svg' },
		group: ['output'],
		version: 1,
		subtitle: '={{$parameter["operation"] + ($parameter["type"] ? ": " + $parameter["type"] : "")}}',
		description: 'Publish and delete WhatsApp Status (stories) through statusflow',
		defaults: {
			name: 'Statusflow',
		},
		usableAsTool: true,
		inputs: [NodeConnectionTypes.Main],
		outputs: [NodeConnectionTypes.Main],
		credentials: [
			{
				name: CREDENTIAL,
				required: true,
			},
		],
		properties: [
			{
				displayName: 'Resource',
				name: 'resource',
				type: 'options',
				noDataExpression: true,
				options: resources,
				default: 'status',
			},
			...operations,
			instanceProperty,
			...withMediaSource(actionProperties),
		],
	};

	async execute(this: IExecuteFunctions): Promise<INodeExecutionData[][]> {
		const items = this.getInputData();
		const out: INodeExecutionData[] = [];
		const workflow = this.getWorkflow();
		const node = this.getNode();
		for (let i = 0; i < items.length; i++) {
			let served: ServedMedia | undefined;
			try {
				const operation = this.getNodeParameter('operation', i) as string;
				const a = actionOf(operation);
				if (!a) throw new NodeOperationError(node, `Unknown operation: ${operation}`, { itemIndex: i });
				const instance = this.getNodeParameter('instance', i) as string;
				const input: IDataObject = {};
				for (const name of a.top) {
					if (name === 'mediaUrl' && a.media?.length) continue;
					const v = this.getNodeParameter(name, i, null) as unknown;
					if (!empty(v)) input[name] = coerce(a, name, v) as IDataObject[string];
				}
				const extra = this.getNodeParameter('additionalFields', i, {}) as IDataObject;
				for (const [k, v] of Object.entries(extra)) {
					if (!empty(v) && input[k] === undefined) input[k] = coerce(a, k, v) as IDataObject[string];
				}
				const kind = a.discriminator ? String(input[a.discriminator] ?? '') : '';
				if (a.media?.includes(kind)) {
					const sourceKind = this.getNodeParameter('mediaSource', i, 'url') as string;
					if (sourceKind === 'binary') {
						const prop = this.getNodeParameter('binaryPropertyName', i) as string;
						const meta = this.helpers.assertBinaryData(i, prop);
						const data = await this.helpers.getBinaryDataBuffer(i, prop);
						const opts = this.getNodeParameter('binaryServing', i, {}) as IDataObject;
						served = await serveOnce(
							data,
							(input.mimeType as string) || meta.mimeType,
							(opts.host as string) || '127.0.0.1',
							(opts.port as number) || 0,
							(opts.publicBaseUrl as string) || '',
							meta.fileName,
						);
						input.mediaUrl = served.url;
						if (input.mimeType === undefined && meta.mimeType) input.mimeType = meta.mimeType;
						if (input.fileName === undefined && meta.fileName) input.fileName = meta.fileName;
					} else {
						input.mediaUrl = this.getNodeParameter('mediaUrl', i) as string;
					}
				}
				// Every call says where it comes from: stored with the status and
				// carried by every event about it.
				const origin: IDataObject = {
					platform: 'n8n',
					workflowId: String(workflow.id ?? ''),
					workflowName: workflow.name ?? '',
					executionId: String(this.getExecutionId() ?? ''),
					nodeName: node.name,
				};
				if (typeof input.source === 'string') origin.source = input.source;
				for (const k of Object.keys(origin)) if (origin[k] === '') delete origin[k];
				const res = await statusflowRequest.call(
					this,
					'POST',
					`/api/nodes/${encodeURIComponent(operation)}/execute`,
					{ instance, input, origin },
					i,
				);
				const output = (res.output ?? {}) as IDataObject;
				out.push({ json: { ...output, traceId: output.traceId ?? res.traceId }, pairedItem: { item: i } });
			} catch (error) {
				if (this.continueOnFail()) {
					out.push({ json: { error: (error as Error).message }, pairedItem: { item: i } });
					continue;
				}
				// NodeOperationError keeps a NodeApiError's message and description.
				throw new NodeOperationError(node, error as Error, { itemIndex: i });
			} finally {
				if (served) await served.close();
			}
		}
		return [out];
	}
}
