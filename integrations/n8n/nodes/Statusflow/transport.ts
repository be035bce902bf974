import type {
	IDataObject,
	IExecuteFunctions,
	IHookFunctions,
	IHttpRequestMethods,
	ILoadOptionsFunctions,
	IHttpRequestOptions,
	JsonObject,
} from 'n8n-workflow';
import { NodeApiError } from 'n8n-workflow';

export const CREDENTIAL = 'statusflowApi';

type Ctx = IExecuteFunctions | IHookFunctions | ILoadOptionsFunctions;

/** statusflowRequest calls the statusflow API with the node's credential (token header). */
export async function statusflowRequest(
	this: Ctx,
	method: IHttpRequestMethods,
	path: string,
	body?: IDataObject | Buffer,
	itemIndex?: number,
	headers: IDataObject = {},
): Promise<IDataObject> {
	const creds = await this.getCredentials(CREDENTIAL);
	const baseURL = String(creds.baseUrl ?? '').replace(/\/+$/, '');
	const options: IHttpRequestOptions = {
		method,
		baseURL,
		url: path,
		json: true,
		headers: { Accept: 'application/json', ...headers },
	};
	if (body !== undefined) options.body = body;
	try {
		return (await this.helpers.httpRequestWithAuthentication.call(this, CREDENTIAL, options)) as IDataObject;
	} catch (error) {
		const e = error as JsonObject & {
			response?: { data?: unknown; body?: unknown };
			context?: { data?: unknown };
			cause?: { response?: { data?: unknown } };
		};
		// statusflow's error envelope: {"success":false,"error":{"message","status"},"traceId"};
		// n8n may already have wrapped the HTTP error (context.data holds the body then).
		const envelope = (e.response?.data ?? e.response?.body ?? e.context?.data ?? e.cause?.response?.data) as
			| IDataObject
			| undefined;
		const err = envelope?.error as IDataObject | undefined;
		throw new NodeApiError(this.getNode(), e, {
			itemIndex,
			message: err?.message ? String(err.message) : undefined,
			description: err
				? `statusflow: ${String(err.status ?? 'error')}${envelope?.traceId ? ` (traceId ${String(envelope.traceId)})` : ''}`
				: undefined,
		});
	}
}
