import type {
	IAuthenticateGeneric,
	ICredentialTestRequest,
	ICredentialType,
	INodeProperties,
} from 'n8n-workflow';

import { credentialProperties, credentialTitle } from '../nodes/Statusflow/generated';

// The credential's fields come from schemas/credential.statusflow.json
// through the server's renderer (nodes/Statusflow/generated.ts). The token goes in the `token` header; the test
// lists the instances, which any valid token may do.
export class StatusflowApi implements ICredentialType {
	name = 'statusflowApi';

	displayName = credentialTitle;

	icon = { light: 'file:statusflow.svg', dark: 'file:statusflow.dark.svg' } as const;

	documentationUrl = 'https://github.com/statusflow/statusflow#automation-nodes';

	properties: INodeProperties[] = credentialProperties;

	authenticate: IAuthenticateGeneric = {
		type: 'generic',
		properties: {
			headers: {
				token: '={{$credentials.token}}',
			},
		},
	};

	test: ICredentialTestRequest = {
		request: {
			baseURL: '={{$credentials.baseUrl.replace(/\\/+$/, "")}}',
			url: '/api/instance/list',
			method: 'GET',
		},
	};
}
