// n8n's own lint rules for community nodes (@n8n/node-cli), without the n8n
// Cloud subset: the Statusflow node opens a short-lived HTTP server to hand
// binary data to statusflow, and the trigger depends on `standardwebhooks`,
// neither of which n8n Cloud allows.
import { configWithoutCloudSupport } from '@n8n/node-cli/eslint';

export default [
	...configWithoutCloudSupport,
	{ ignores: ['scripts/**', 'test/**'] },
];
