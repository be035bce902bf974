#!/usr/bin/env node
// Copies the icons next to the compiled nodes and credentials (n8n loads
// `file:` icons relative to the .js file).
import { cpSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const pkg = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
function walk(dir) {
	for (const name of readdirSync(path.join(pkg, dir))) {
		const rel = path.join(dir, name);
		if (statSync(path.join(pkg, rel)).isDirectory()) walk(rel);
		else if (/\.(svg|png)$/.test(name)) cpSync(path.join(pkg, rel), path.join(pkg, 'dist', rel));
	}
}
walk('credentials');
walk('nodes');
