// "Try it" uses the caller's token: the one the console keeps in this tab's
// session storage, or one entered with Authorize. It is sent in the `token`
// header, never put in a URL.
'use strict';
const token = sessionStorage.getItem('statusflow.token') || '';
const ui = SwaggerUIBundle({
  url: '/openapi.json',
  dom_id: '#swagger-ui',
  deepLinking: true,
  tryItOutEnabled: true,
  persistAuthorization: false,
  onComplete: () => { if (token) ui.preauthorizeApiKey('tokenHeader', token); },
});
document.getElementById('sf-token').textContent = token ? 'Try it out uses your console token.' : 'Sign in to the console (or use Authorize) to try requests.';
window.ui = ui;
