import type {
	IDataObject,
	IExecuteFunctions,
	ILoadOptionsFunctions,
	INodeExecutionData,
	INodeListSearchResult,
	INodeProperties,
} from 'n8n-workflow';
import { NodeOperationError } from 'n8n-workflow';

import { instanceProperty } from './generated';
import { statusflowRequest } from './transport';

// The instance picker and the Instance resource: what the API offers to set
// up an instance (create it, link a phone with a QR or pairing code, read its
// state), so nobody needs curl between n8n and statusflow.

export const OP_INSTANCE_CREATE = 'instance.create';
export const OP_INSTANCE_CONNECT = 'instance.connect';
export const OP_INSTANCE_STATE = 'instance.state';

/** The instance parameter: picked from GET /api/instance/list, or typed by name. */
export const instanceLocator: INodeProperties = {
	displayName: 'Instance',
	name: 'instance',
	type: 'resourceLocator',
	default: { mode: 'list', value: '' },
	required: true,
	description: instanceProperty.description,
	modes: [
		{
			displayName: 'From List',
			name: 'list',
			type: 'list',
			placeholder: 'Select an instance...',
			typeOptions: {
				searchListMethod: 'searchInstances',
				searchable: true,
			},
		},
		{
			displayName: 'By Name',
			name: 'name',
			type: 'string',
			placeholder: 'e.g. sales',
			validation: [
				{
					type: 'regex',
					properties: {
						regex: '[A-Za-z0-9][A-Za-z0-9_.-]{0,63}',
						errorMessage: 'Not a valid instance name',
					},
				},
			],
		},
	],
};

/** instanceName reads the picker's value (a resource locator, or a plain name from older workflows). */
export function instanceName(value: unknown): string {
	if (typeof value === 'string') return value;
	if (value && typeof value === 'object' && 'value' in value) return String((value as IDataObject).value ?? '');
	return '';
}

/** searchInstances lists the instances the credential's token may use, filtered by name. */
export async function searchInstances(
	this: ILoadOptionsFunctions,
	filter?: string,
): Promise<INodeListSearchResult> {
	const res = await statusflowRequest.call(this, 'GET', '/api/instance/list');
	const wanted = (filter ?? '').toLowerCase();
	const results = ((res.instances ?? []) as IDataObject[])
		.map((i) => String(i.name))
		.filter((name) => name.toLowerCase().includes(wanted))
		.sort()
		.map((name) => ({ name, value: name }));
	return { results };
}

export const instanceOperations: INodeProperties = {
	displayName: 'Operation',
	name: 'operation',
	type: 'options',
	noDataExpression: true,
	displayOptions: { show: { resource: ['instance'] } },
	options: [
		{
			name: 'Create',
			value: OP_INSTANCE_CREATE,
			action: 'Create an instance',
			description: 'Create an instance (a WhatsApp account to link, or a sandbox); returns its token once',
		},
		{
			name: 'Get QR or Pairing Code',
			value: OP_INSTANCE_CONNECT,
			action: 'Get a QR or pairing code',
			description: 'Start linking a phone: a QR code to scan, or a pairing code for a phone number',
		},
		{
			name: 'Get State',
			value: OP_INSTANCE_STATE,
			action: 'Get the state of an instance',
			description: 'Read whether an instance is connected, connecting, disconnected or logged out',
		},
	],
	default: OP_INSTANCE_STATE,
};

export const instanceFields: INodeProperties[] = [
	{
		displayName: 'Name',
		name: 'name',
		type: 'string',
		default: '',
		required: true,
		placeholder: 'e.g. sales',
		description: 'Name of the new instance',
		displayOptions: { show: { resource: ['instance'], operation: [OP_INSTANCE_CREATE] } },
	},
	{
		displayName: 'Engine',
		name: 'engine',
		type: 'options',
		options: [
			{ name: 'Sandbox', value: 'sandbox', description: 'Records statuses instead of sending them' },
			{ name: 'WhatsApp', value: 'whatsmeow', description: 'A real WhatsApp account, linked by QR or pairing code' },
		],
		default: 'whatsmeow',
		description: 'What publishes the statuses',
		displayOptions: { show: { resource: ['instance'], operation: [OP_INSTANCE_CREATE] } },
	},
	{
		displayName: 'Phone Number',
		name: 'number',
		type: 'string',
		default: '',
		placeholder: 'e.g. 5511999999999',
		description:
			'With a number (international format, digits only), a pairing code to type on that phone; empty: a QR code',
		displayOptions: { show: { resource: ['instance'], operation: [OP_INSTANCE_CONNECT] } },
	},
	{
		displayName: 'Put Output File in Field',
		name: 'binaryPropertyName',
		type: 'string',
		default: 'data',
		hint: 'The name of the output binary field to put the QR code image in',
		displayOptions: { show: { resource: ['instance'], operation: [OP_INSTANCE_CONNECT], number: [''] } },
	},
];

/** runInstanceOperation calls the API for one Instance operation and returns the item. */
export async function runInstanceOperation(
	this: IExecuteFunctions,
	operation: string,
	i: number,
): Promise<INodeExecutionData> {
	if (operation === OP_INSTANCE_CREATE) {
		const body = {
			name: this.getNodeParameter('name', i) as string,
			engine: this.getNodeParameter('engine', i) as string,
		};
		const res = await statusflowRequest.call(this, 'POST', '/api/instance/new', body, i);
		return { json: (res.instance ?? res) as IDataObject, pairedItem: { item: i } };
	}
	const instance = instanceName(this.getNodeParameter('instance', i, '', { extractValue: true }));
	const path = encodeURIComponent(instance);
	if (operation === OP_INSTANCE_CONNECT) {
		const number = (this.getNodeParameter('number', i, '') as string).trim();
		const qs = number ? `?number=${encodeURIComponent(number)}` : '';
		const res = await statusflowRequest.call(this, 'GET', `/api/instance/connect/${path}${qs}`, undefined, i);
		const item: INodeExecutionData = { json: res, pairedItem: { item: i } };
		const png = typeof res.qrCodeBase64 === 'string' ? /^data:image\/png;base64,(.+)$/.exec(res.qrCodeBase64) : null;
		if (png) {
			const field = this.getNodeParameter('binaryPropertyName', i, 'data') as string;
			item.binary = {
				[field]: await this.helpers.prepareBinaryData(Buffer.from(png[1], 'base64'), `${instance}-qr.png`, 'image/png'),
			};
		}
		return item;
	}
	const res = await statusflowRequest.call(
		this,
		'GET',
		`/api/instance/list?instanceName=${path}`,
		undefined,
		i,
	);
	const found = ((res.instances ?? []) as IDataObject[]).find((x) => x.name === instance);
	if (!found) throw new NodeOperationError(this.getNode(), `Instance not found: ${instance}`, { itemIndex: i });
	return { json: found, pairedItem: { item: i } };
}
