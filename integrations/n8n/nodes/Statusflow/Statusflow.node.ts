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
	operations,
	resources,
	type GeneratedAction,
} from './generated';
import {
	instanceFields,
	instanceLocator,
	instanceName,
	instanceOperations,
	runInstanceOperation,
	searchInstances,
} from './instances';
import { CREDENTIAL, statusflowRequest } from './transport';

// The resources, operations and their parameters come from the node
// catalog through the server's renderer (generated.ts, written by
// `go run ./cmd/nodegen`); this file adds what the API has no field for and
// turns parameters back into a node input.

// The parameters of the node that the API has no field for: where media
// comes from (a URL statusflow downloads, or binary data of a previous node
// that the node uploads to statusflow first, POST /api/media/:instance).
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
			description: 'Binary data of a previous node, uploaded to statusflow',
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
				options: [
					...resources.filter((r) => r.value !== 'instance'),
					{ name: 'Instance', value: 'instance' },
				].sort((x, y) => x.name.localeCompare(y.name)),
				default: 'status',
			},
			...operations,
			instanceOperations,
			{
				...instanceLocator,
				displayOptions: { hide: { operation: ['instance.create'] } },
			},
			...instanceFields,
			...withMediaSource(actionProperties),
		],
	};

	methods = {
		listSearch: { searchInstances },
	};

	async execute(this: IExecuteFunctions): Promise<INodeExecutionData[][]> {
		const items = this.getInputData();
		const out: INodeExecutionData[] = [];
		const workflow = this.getWorkflow();
		const node = this.getNode();
		for (let i = 0; i < items.length; i++) {
			try {
				const operation = this.getNodeParameter('operation', i) as string;
				if (operation.startsWith('instance.')) {
					out.push(await runInstanceOperation.call(this, operation, i));
					continue;
				}
				const a = actionOf(operation);
				if (!a) throw new NodeOperationError(node, `Unknown operation: ${operation}`, { itemIndex: i });
				const instance = instanceName(this.getNodeParameter('instance', i, '', { extractValue: true }));
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
						// The upload answers a short-lived mediaUrl on statusflow itself.
						const mimeType = (input.mimeType as string) || meta.mimeType || 'application/octet-stream';
						const up = await statusflowRequest.call(
							this,
							'POST',
							`/api/media/${encodeURIComponent(instance)}`,
							data,
							i,
							{ 'Content-Type': mimeType },
						);
						const uploaded = (up.data ?? up) as IDataObject;
						input.mediaUrl = uploaded.mediaUrl as string;
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
			}
		}
		return [out];
	}
}
