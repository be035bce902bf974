import type {
	IDataObject,
	IHookFunctions,
	INodeType,
	INodeTypeDescription,
	IWebhookFunctions,
	IWebhookResponseData,
} from 'n8n-workflow';
import { NodeConnectionTypes, NodeOperationError } from 'n8n-workflow';

import { eventOptions } from '../Statusflow/generated';
import { instanceLocator, instanceName, searchInstances } from '../Statusflow/instances';
import { CREDENTIAL, statusflowRequest } from '../Statusflow/transport';
import { verifySignature } from './signature';

// webhookLabel names this trigger's webhook on the instance: one per
// workflow and node, within statusflow's label rule [A-Za-z0-9][A-Za-z0-9_.-]{0,63}.
export function webhookLabel(workflowId: string | undefined, nodeId: string): string {
	const clean = (s: string) => s.replace(/[^A-Za-z0-9_.-]/g, '');
	return `n8n-${clean(workflowId ?? 'wf').slice(0, 24)}-${clean(nodeId).slice(0, 24)}`.slice(0, 64);
}

// verifyDelivery checks a delivery's Standard Webhooks signature and returns the parsed event.
export function verifyDelivery(secret: string, rawBody: string, headers: Record<string, unknown>): IDataObject {
	verifySignature(secret, rawBody, headers);
	return JSON.parse(rawBody) as IDataObject;
}

export class StatusflowTrigger implements INodeType {
	description: INodeTypeDescription = {
		displayName: 'Statusflow Trigger',
		name: 'statusflowTrigger',
		icon: { light: 'file:statusflow.svg', dark: 'file:statusflow.dark.svg' },
		group: ['trigger'],
		version: 1,
		subtitle: '={{$parameter["events"].join(", ")}}',
		description: 'Starts the workflow on statusflow status and instance events (signed webhooks)',
		defaults: {
			name: 'Statusflow Trigger',
		},
		inputs: [],
		outputs: [NodeConnectionTypes.Main],
		credentials: [
			{
				name: CREDENTIAL,
				required: true,
			},
		],
		webhooks: [
			{
				name: 'default',
				httpMethod: 'POST',
				responseMode: 'onReceived',
				path: 'webhook',
			},
		],
		properties: [
			instanceLocator,
			{
				displayName: 'Events',
				name: 'events',
				type: 'multiOptions',
				required: true,
				default: ['status.published'],
				description: 'The events that start the workflow',
				options: eventOptions,
			},
		],
	};

	methods = {
		listSearch: { searchInstances },
	};

	webhookMethods = {
		default: {
			async checkExists(this: IHookFunctions): Promise<boolean> {
				const data = this.getWorkflowStaticData('node');
				if (!data.label || !data.secret) return false;
				const instance = instanceName(this.getNodeParameter('instance', '', { extractValue: true }));
				const url = this.getNodeWebhookUrl('default');
				const res = await statusflowRequest.call(
					this,
					'GET',
					`/api/events/getWebhook/${encodeURIComponent(instance)}`,
				);
				const hooks = (res.webhooks ?? []) as IDataObject[];
				const events = [...(this.getNodeParameter('events') as string[])].sort().join(',');
				return hooks.some(
					(w) =>
						w.label === data.label &&
						w.url === url &&
						w.enabled === true &&
						[...((w.events as string[]) ?? [])].sort().join(',') === events,
				);
			},

			async create(this: IHookFunctions): Promise<boolean> {
				const instance = instanceName(this.getNodeParameter('instance', '', { extractValue: true }));
				const events = this.getNodeParameter('events') as string[];
				const url = this.getNodeWebhookUrl('default');
				const label = webhookLabel(this.getWorkflow().id, this.getNode().id);
				const path = `/api/events/webhook/${encodeURIComponent(instance)}`;
				const body = { label, enabled: true, url, events };
				let res = await statusflowRequest.call(this, 'POST', path, body);
				let hook = (res.webhook ?? {}) as IDataObject;
				if (!hook.secret) {
					// The label existed (the secret is shown only on creation): start afresh.
					await statusflowRequest.call(
						this,
						'DELETE',
						`${path}/${encodeURIComponent(label)}`,
					);
					res = await statusflowRequest.call(this, 'POST', path, body);
					hook = (res.webhook ?? {}) as IDataObject;
				}
				if (!hook.secret) {
					throw new NodeOperationError(this.getNode(), 'statusflow did not return the webhook signing secret');
				}
				const data = this.getWorkflowStaticData('node');
				data.label = label;
				data.instance = instance;
				data.secret = hook.secret;
				return true;
			},

			async delete(this: IHookFunctions): Promise<boolean> {
				const data = this.getWorkflowStaticData('node');
				if (data.label) {
					const instance = (data.instance as string) ?? (instanceName(this.getNodeParameter('instance', '', { extractValue: true })));
					try {
						await statusflowRequest.call(
							this,
							'DELETE',
							`/api/events/webhook/${encodeURIComponent(instance)}/${encodeURIComponent(data.label as string)}`,
						);
					} catch (error) {
						const code = (error as { httpCode?: string }).httpCode;
						if (code !== '404') return false;
					}
				}
				delete data.label;
				delete data.instance;
				delete data.secret;
				return true;
			},
		},
	};

	async webhook(this: IWebhookFunctions): Promise<IWebhookResponseData> {
		const req = this.getRequestObject();
		const res = this.getResponseObject();
		const data = this.getWorkflowStaticData('node');
		if (!req.rawBody && typeof req.readRawBody === 'function') await req.readRawBody();
		const raw = req.rawBody ? req.rawBody.toString('utf8') : JSON.stringify(req.body ?? {});
		let event: IDataObject;
		try {
			event = verifyDelivery(String(data.secret ?? ''), raw, req.headers as Record<string, unknown>);
		} catch (error) {
			res.status(401).json({ error: `invalid signature: ${(error as Error).message}` });
			return { noWebhookResponse: true };
		}
		const events = this.getNodeParameter('events') as string[];
		if (events.length > 0 && !events.includes('*') && !events.includes(String(event.type))) {
			res.status(200).json({ ignored: true });
			return { noWebhookResponse: true };
		}
		return {
			workflowData: [this.helpers.returnJsonArray([{ ...event, webhookId: req.headers['webhook-id'] }])],
		};
	}
}
