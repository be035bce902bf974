#!/usr/bin/env node
// n8n's community-package scanner (@n8n/scan-community-package, what n8n runs
// before it verifies a package) on this package, without publishing it: its
// analysis of the source (the files the scanner takes from the repository a
// provenance attestation points at) and of the built package (`npm pack`
// output: compiled .js and package.json). Exits non-zero on any violation.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { analyzePackage, SOURCE_FILE_PATTERNS } from '@n8n/scan-community-package/scanner/scanner.mjs';

const pkg = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const work = mkdtempSync(path.join(os.tmpdir(), 'sf-n8n-scan-'));
let failed = false;
try {
	const source = await analyzePackage(pkg, SOURCE_FILE_PATTERNS);
	console.log(`  ${source.passed ? 'ok' : 'FAIL'} - scanner on the source (${SOURCE_FILE_PATTERNS.join(', ')})`);
	if (!source.passed) console.log(source.message, source.details ?? '');
	failed ||= !source.passed;

	execFileSync('npm', ['pack', '--silent', '--pack-destination', work], { cwd: pkg, stdio: ['ignore', 'ignore', 'inherit'] });
	const tgz = readdirSync(work).find((f) => f.endsWith('.tgz'));
	execFileSync('tar', ['xzf', path.join(work, tgz), '-C', work]);
	const built = path.join(work, 'package');
	const files = readdirSync(path.join(built, 'dist', 'nodes'));
	const dist = await analyzePackage(built, ['**/*.js', 'package.json']);
	console.log(`  ${dist.passed ? 'ok' : 'FAIL'} - scanner on the packed package (${tgz}: dist/nodes/${files.join(', dist/nodes/')})`);
	if (!dist.passed) console.log(dist.message, dist.details ?? '');
	failed ||= !dist.passed;
} finally {
	rmSync(work, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
