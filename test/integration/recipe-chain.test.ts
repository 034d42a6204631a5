/**
 * The recipe chain as a user runs it: generate | features for three processes → prepare → a classifier.
 * Checks the feature invariants on generated events and that the toy physics is learnable but not trivially
 * separable: a multinomial logistic regression on the 14 scaled HLF (trained here, deterministic) reaches a
 * one-vs-rest AUC ≥ 0.9 on the test split, and stays below 1.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fromRecordBatch, openIpcStream } from '../../src/columnar/index.js';
import { concatColumns, type ColumnData } from '../../src/root/columns.js';
import { BIN } from '../helpers/cli.js';

const hepml = `node ${BIN}`;
function sh(cmd: string): { code: number; stdout: string; stderr: string } {
  const r = spawnSync('bash', ['-c', `set -o pipefail; ${cmd}`], { encoding: 'utf8', timeout: 300_000, maxBuffer: 1 << 26 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

async function read(path: string): Promise<Map<string, ColumnData>> {
  const s = await openIpcStream(path);
  const parts = new Map<string, ColumnData[]>();
  for await (const rb of s.batches) {
    for (const c of fromRecordBatch(rb).columns) {
      if (!parts.has(c.name)) parts.set(c.name, []);
      parts.get(c.name)!.push(c.data);
    }
  }
  return new Map([...parts].map(([k, v]) => [k, concatColumns(v)]));
}
const fixed = (d: ColumnData | undefined) => ((d as Extract<ColumnData, { kind: 'fixed' }>).child as { values: Float32Array | Uint8Array }).values;
const prim = (d: ColumnData | undefined) => Array.from((d as { values: ArrayLike<number | bigint> }).values, Number);

/** One-vs-rest ROC AUC (Mann–Whitney, ties counted half). */
export function auc(scores: number[], positive: boolean[]): number {
  const idx = scores.map((_, i) => i).sort((a, b) => scores[a]! - scores[b]!);
  let rankSum = 0;
  let nPos = 0;
  for (let i = 0; i < idx.length; ) {
    let j = i;
    while (j + 1 < idx.length && scores[idx[j + 1]!] === scores[idx[i]!]) j++;
    const avg = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) if (positive[idx[k]!]) {
      rankSum += avg;
      nPos++;
    }
    i = j + 1;
  }
  const nNeg = idx.length - nPos;
  return (rankSum - (nPos * (nPos + 1)) / 2) / (nPos * nNeg);
}

/** Multinomial logistic regression by full-batch gradient descent (deterministic). */
function softmaxRegression(x: Float32Array, y: number[], d: number, k: number, epochs = 400, lr = 0.5): (row: Float32Array) => number[] {
  const n = y.length;
  const w = new Float64Array((d + 1) * k);
  const p = new Float64Array(k);
  for (let ep = 0; ep < epochs; ep++) {
    const g = new Float64Array(w.length);
    for (let i = 0; i < n; i++) {
      let max = -Infinity;
      for (let c = 0; c < k; c++) {
        let z = w[d * k + c]!;
        for (let j = 0; j < d; j++) z += w[j * k + c]! * x[i * d + j]!;
        p[c] = z;
        max = Math.max(max, z);
      }
      let s = 0;
      for (let c = 0; c < k; c++) s += p[c] = Math.exp(p[c]! - max);
      for (let c = 0; c < k; c++) {
        const e = p[c]! / s - (y[i] === c ? 1 : 0);
        for (let j = 0; j < d; j++) g[j * k + c]! += e * x[i * d + j]!;
        g[d * k + c]! += e;
      }
    }
    for (let t = 0; t < w.length; t++) w[t]! -= (lr * g[t]!) / n;
  }
  return (row) => {
    const z = Array.from({ length: k }, (_, c) => {
      let v = w[d * k + c]!;
      for (let j = 0; j < d; j++) v += w[j * k + c]! * row[j]!;
      return v;
    });
    const m = Math.max(...z);
    const e = z.map((v) => Math.exp(v - m));
    const s = e.reduce((a, b) => a + b, 0);
    return e.map((v) => v / s);
  };
}

test('generate | features | prepare: invariants of generated events, and a learnable but not trivial problem', async () => {
  const d = mkdtempSync(join(tmpdir(), 'hepml-chain-test-'));
  try {
    const events = { qcd: 6000, ttbar: 1500, wjets: 1500 };
    for (const [p, n] of Object.entries(events)) {
      const r = sh(`${hepml} generate --process ${p} --events ${n} --seed 5 | ${hepml} features --label ${p} -o ${d}/${p}.arrow --json`);
      assert.equal(r.code, 0, r.stderr);
      const s = JSON.parse(r.stdout);
      assert.equal(s.events, n);
      assert.ok(s.selected > 300, `${p}: only ${s.selected} of ${n} events selected`);
    }

    // invariants on generated events (published recipe)
    const tt = await read(`${d}/ttbar.arrow`);
    const gru = fixed(tt.get('GRU_input')) as Float32Array;
    const hlf = fixed(tt.get('HLF_input')) as Float32Array;
    const np = prim(tt.get('n_particles'));
    assert.ok(np.every((n) => n > 1 && n <= 801));
    for (let r = 0; r < np.length; r++) {
      const g = gru.subarray(r * 15219, (r + 1) * 15219);
      const flag = hlf[r * 14 + 13] === 1 ? 16 : 17;
      assert.ok(Math.abs(g[800 * 19 + flag]! - Math.sqrt(800)) < 1e-4, 'the lepton is the last of the 801 rows');
      // the padding rows (801 − n of them, identical after standardization) form one contiguous block
      const padRows: number[] = [];
      for (let row = 0; row < 801; row++) {
        // padding: every flag column at its "0" value and energy at its minimum
        let pad = true;
        for (let j = 13; j <= 17 && pad; j++) {
          const v = g[row * 19 + j]!;
          let min = Infinity;
          for (let q = 0; q < 801; q++) min = Math.min(min, g[q * 19 + j]!);
          if (v !== min) pad = false;
        }
        if (pad) padRows.push(row);
      }
      assert.equal(padRows.length, 801 - np[r]!, 'padding rows are those with no particle flag');
      if (padRows.length) assert.equal(padRows[padRows.length - 1]! - padRows[0]! + 1, padRows.length, 'one contiguous block');
    }

    const p = sh(`${hepml} prepare --class qcd=${d}/qcd.arrow --class ttbar=${d}/ttbar.arrow --class wjets=${d}/wjets.arrow --undersample --test-fraction 0.3 --out ${d}/data --json`);
    assert.equal(p.code, 0, p.stderr);
    const scaler = JSON.parse(readFileSync(join(d, 'data', 'scaler.json'), 'utf8'));
    assert.ok(scaler, 'scaler written');

    const train = await read(join(d, 'data', 'train.arrow'));
    const testSet = await read(join(d, 'data', 'test.arrow'));
    const yTrain = prim(train.get('label'));
    const yTest = prim(testSet.get('label'));
    const counts = [0, 1, 2].map((c) => yTrain.filter((y) => y === c).length);
    assert.ok(Math.max(...counts) - Math.min(...counts) <= 1, `balanced classes: ${counts}`);
    const xTrain = fixed(train.get('HLF_input')) as Float32Array;
    const xTest = fixed(testSet.get('HLF_input')) as Float32Array;
    const model = softmaxRegression(xTrain, yTrain, 14, 3);
    const probs = yTest.map((_, i) => model(xTest.subarray(i * 14, i * 14 + 14)));
    const aucs = [0, 1, 2].map((c) => auc(probs.map((q) => q[c]!), yTest.map((y) => y === c)));
    const macro = aucs.reduce((a, b) => a + b, 0) / 3;
    process.stderr.write(`recipe chain: ${yTrain.length} train / ${yTest.length} test events, one-vs-rest AUC ${aucs.map((a) => a.toFixed(4)).join(' ')} (macro ${macro.toFixed(4)})\n`);
    assert.ok(macro >= 0.9, `a linear model on the HLF should reach AUC ≥ 0.9, got ${macro}`);
    assert.ok(aucs.every((a) => a < 0.999), `the toy problem must not be trivially separable: ${aucs}`);
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});
