/** Generated events through the recipe (generate | features --recipe corrected → prepare), for training tests. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { BIN } from './cli.js';

export const hepml = `node ${BIN}`;

export function sh(cmd: string, env: Record<string, string> = {}): { code: number; stdout: string; stderr: string } {
  const r = spawnSync('bash', ['-c', `set -o pipefail; ${cmd}`], { encoding: 'utf8', timeout: 300_000, maxBuffer: 1 << 26, env: { ...process.env, ...env } });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** Writes DIR/{qcd,ttbar,wjets}.arrow and DIR/prep/{train,test}.arrow (≈ 2,600 + 660 rows); returns DIR/prep. */
export function makeRecipeData(dir: string): string {
  const prep = join(dir, 'prep');
  const events: Record<string, number> = { qcd: 12000, ttbar: 1500, wjets: 1300 };
  for (const [p, n] of Object.entries(events)) {
    const r = sh(`${hepml} generate --process ${p} --events ${n} --seed 21 -o - | ${hepml} features - --recipe corrected -o ${join(dir, p)}.arrow`);
    assert.equal(r.code, 0, r.stderr);
  }
  const r = sh(`${hepml} prepare --class qcd=${dir}/qcd.arrow --class ttbar=${dir}/ttbar.arrow --class wjets=${dir}/wjets.arrow --undersample -o ${prep}`);
  assert.equal(r.code, 0, r.stderr);
  return prep;
}
