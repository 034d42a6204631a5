#!/usr/bin/env node
// The package build: TypeScript → dist/, plus the assets tsc does not copy (the shipped GRU kernel).
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, writeFileSync } from 'node:fs';

const r = spawnSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.json'], { stdio: 'inherit' });
if (r.status !== 0) process.exit(r.status ?? 1);
mkdirSync('dist/train/gru', { recursive: true });
cpSync('src/train/gru/gru.wasm', 'dist/train/gru/gru.wasm');

// oclif.manifest.json: the commands' flags and help, so that a start does not import every command module to
// find one (hep-ml --version: 0.41 s → 0.11 s; docs/decisions.md). Shipped in the package ("files").
const { Plugin } = await import('@oclif/core');
const plugin = new Plugin({ root: process.cwd(), type: 'core', ignoreManifest: true, errorOnManifestCreate: true });
await plugin.load();
writeFileSync('oclif.manifest.json', JSON.stringify(plugin.manifest, null, 2) + '\n');
