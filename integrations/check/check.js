// Checks the renderings the Go tests write to nodes/testdata (golden files)
// with the real packages:
//   n8n:    every node description resolves its parameters with
//           NodeHelpers.getNodeParameters (n8n-workflow) for each sample, and
//           displayOptions hide and show what the schema says;
//   zapier: the whole app (zapier.app.json) passes validateAppDefinition
//           (zapier-platform-schema) with no errors.
// Usage: node check.js [testdata dir]. Exits non-zero on any failure.
'use strict';

const fs = require('fs');
const path = require('path');
const assert = require('assert');
const { NodeHelpers } = require('n8n-workflow');
const { validateAppDefinition } = require('zapier-platform-schema');

const dir = path.resolve(process.argv[2] || path.join(__dirname, '..', '..', 'nodes', 'testdata'));
const read = (f) => JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8'));
let failures = 0;
let passed = 0;

function check(name, fn) {
  try {
    fn();
    passed++;
    console.log(`ok   ${name}`);
  } catch (err) {
    failures++;
    console.log(`FAIL ${name}\n     ${String(err && err.stack || err).split('\n').join('\n     ')}`);
  }
}

// nodeValues turns a sample input into the parameters a user would set:
// top-level properties where one is shown for these values, the rest in the
// "additionalFields" collection.
function nodeValues(desc, input) {
  const values = { instance: 'sales' };
  const extra = {};
  const shown = (p, vals) => {
    const show = p.displayOptions && p.displayOptions.show;
    if (!show) return true;
    return Object.entries(show).every(([k, allowed]) => allowed.includes(vals[k.replace(/^\//, '')]));
  };
  for (const [k, v] of Object.entries(input)) {
    const value = Array.isArray(v) || (v && typeof v === 'object') ? JSON.stringify(v) : v;
    const top = desc.properties.find((p) => p.name === k && p.type !== 'collection' && shown(p, input));
    if (top) values[k] = value;
    else extra[k] = value;
  }
  if (Object.keys(extra).length) values.additionalFields = extra;
  return values;
}

const n8nFiles = fs.readdirSync(dir).filter((f) => /^n8n\..+\.json$/.test(f) && !f.startsWith('n8n.credential.')).sort();

check('n8n credential: properties resolve, token is a password', () => {
  const cred = read('n8n.credential.statusflowApi.json');
  assert.strictEqual(cred.name, 'statusflowApi');
  const params = NodeHelpers.getNodeParameters(cred.properties, { token: 'sfa_x' }, true, false, null, null);
  assert.strictEqual(params.baseUrl, 'http://localhost:8080');
  assert.strictEqual(params.token, 'sfa_x');
  assert(cred.properties.find((p) => p.name === 'token').typeOptions.password);
  assert.strictEqual(cred.authenticate.properties.headers.token, '={{$credentials.token}}');
});
const nodes = fs.existsSync(path.join(dir, 'nodes.json')) ? read('nodes.json') : [];
assert(n8nFiles.length > 0, `no n8n renderings in ${dir}`);

for (const file of n8nFiles) {
  const desc = read(file);
  check(`n8n ${file}: description shape`, () => {
    for (const k of ['displayName', 'name', 'group', 'version', 'description', 'defaults', 'inputs', 'outputs', 'properties', 'credentials']) {
      assert(k in desc, `missing ${k}`);
    }
    assert.deepStrictEqual(desc.credentials, [{ name: 'statusflowApi', required: true }]);
    const walk = (props) => props.forEach((p) => {
      assert(p.name && p.displayName && p.type && 'default' in p, `bad property ${JSON.stringify(p)}`);
      if (p.type === 'options') assert(p.options.length > 0 && p.options.some((o) => o.value === p.default), `${p.name}: default not an option`);
      if (p.type === 'collection') walk(p.options);
    });
    walk(desc.properties);
  });
  check(`n8n ${file}: defaults resolve`, () => {
    const params = NodeHelpers.getNodeParameters(desc.properties, {}, true, false, { typeVersion: desc.version }, desc);
    assert(params, 'getNodeParameters returned null');
    assert.strictEqual(params.instance, '');
  });
  const node = nodes.find((n) => `n8n.${n.id}.json` === file);
  for (const sample of (node && node.samples) || []) {
    if (!sample.input) continue;
    check(`n8n ${file}: sample "${sample.title}" resolves`, () => {
      const values = nodeValues(desc, sample.input);
      const params = NodeHelpers.getNodeParameters(desc.properties, values, true, false, { typeVersion: desc.version }, desc);
      assert(params, 'getNodeParameters returned null');
      const got = Object.assign({}, params, params.additionalFields || {});
      for (const [k, v] of Object.entries(sample.input)) {
        const want = Array.isArray(v) || (v && typeof v === 'object') ? JSON.stringify(v) : v;
        assert.deepStrictEqual(got[k], want, `parameter ${k}`);
      }
      assert.strictEqual(params.instance, 'sales');
    });
  }
}

// displayOptions derived from the schema's if/then: the media URL is shown
// for media types only, and the status text for text only.
check('n8n status.publish: displayOptions follow the schema', () => {
  const desc = read('n8n.status.publish.json');
  const resolve = (values) => NodeHelpers.getNodeParameters(desc.properties, values, true, false, { typeVersion: 1 }, desc);
  const text = resolve({ instance: 'sales', type: 'text', message: 'hi', mediaUrl: 'https://x/a.jpg' });
  assert.strictEqual(text.message, 'hi');
  assert(!('mediaUrl' in text), 'mediaUrl shown for text');
  for (const type of ['image', 'video', 'audio']) {
    const media = resolve({ instance: 'sales', type, message: 'hi', mediaUrl: 'https://x/a.jpg' });
    assert.strictEqual(media.mediaUrl, 'https://x/a.jpg', `mediaUrl for ${type}`);
    assert(!('message' in media), `required text message shown for ${type}`);
  }
  const image = resolve({ instance: 'sales', type: 'image', mediaUrl: 'https://x/a.jpg', additionalFields: { message: 'caption', font: 'serif' } });
  assert.strictEqual(image.additionalFields.message, 'caption');
  assert(!('font' in image.additionalFields), 'font shown for image');
});

check('zapier zapier.app.json: validateAppDefinition', () => {
  const app = read('zapier.app.json');
  const results = validateAppDefinition(app);
  const errors = (results && results.errors) || [];
  assert.strictEqual(errors.length, 0, errors.map((e) => `${e.property}: ${e.message}`).join('\n'));
  assert(Object.keys(app.creates).length >= 2 && Object.keys(app.triggers).length >= 3, 'app lacks nodes');
});

for (const file of fs.readdirSync(dir).filter((f) => /^zapier\.(?!app\.).+\.json$/.test(f)).sort()) {
  check(`zapier ${file}: fragment validates inside an app`, () => {
    const app = read('zapier.app.json');
    const fragment = read(file);
    const one = Object.assign({}, app, { creates: {}, triggers: {} }, fragment);
    const errors = validateAppDefinition(one).errors || [];
    assert.strictEqual(errors.length, 0, errors.map((e) => `${e.property}: ${e.message}`).join('\n'));
    for (const ops of Object.values(fragment)) {
      for (const op of Object.values(ops)) {
        assert(op.operation.inputFields.length > 0 && op.operation.sample, `${op.key}: no inputFields or sample`);
        for (const f of op.operation.inputFields.filter((f) => f.choices)) {
          assert(f.choices.every((c) => c.value && c.label), `${f.key}: bad choices`);
        }
      }
    }
  });
}

console.log(`${passed} passed, ${failures} failed`);
process.exit(failures ? 1 : 0);
