#!/usr/bin/env node
// The package build: TypeScript → dist/, plus the assets tsc does not copy (the shipped GRU kernel).
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync } from 'node:fs';

const r = spawnSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.json'], { stdio: 'inherit' });
if (r.status !== 0) process.exit(r.status ?? 1);
mkdirSync('dist/train/gru', { recursive: true });
cpSync('src/train/gru/gru.wasm', 'dist/train/gru/gru.wasm');
