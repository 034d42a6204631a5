/**
 * Conformance: every branch of every truth file in ../shared/testdata, read by hep-ml and compared with
 * the values of an independent reader (entries, per-entry counts, sha256 of the values).
 * All numeric flat and jagged branches must match; strings and STL containers are compared when
 * hep-ml reads them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { basename, join } from 'node:path';
import { readdirSync } from 'node:fs';
import { RootFile } from '../../src/root/file.js';
import { TreeReader } from '../../src/root/reader.js';
import { concatColumns, type ColumnData } from '../../src/root/columns.js';
import type { BranchInfo } from '../../src/root/tree.js';
import { compareColumn, formatResult, hasTestdata, isNumericBranch, loadTruth, testdataDir, truthFiles } from '../helpers/truth.js';

const dir = testdataDir();
const present = hasTestdata(dir);
if (!present) console.warn(`\n*** HEPML_TESTDATA not found at ${dir}: conformance tests are SKIPPED ***\n`);

async function readAll(reader: TreeReader, entries: number, step: number): Promise<Map<string, ColumnData>> {
  const parts = new Map<string, ColumnData[]>();
  for await (const batch of reader.batches(0, entries, step)) {
    for (const c of batch.columns) {
      if (!parts.has(c.name)) parts.set(c.name, []);
      parts.get(c.name)!.push(c.data);
    }
  }
  return new Map([...parts].map(([k, v]) => [k, concatColumns(v)]));
}

for (const { rootFile, truthPath } of present ? truthFiles(dir) : [{ rootFile: '(none)', truthPath: '' }]) {
  test(`truth: ${basename(rootFile)}`, { skip: present ? false : `HEPML_TESTDATA not found: ${dir}` }, async (t) => {
    const truth = loadTruth(truthPath);
    const f = await RootFile.open(rootFile);
    try {
      for (const tt of truth.trees) {
        const branchNames = Object.keys(tt.branches);
        if (branchNames.length === 0) continue;
        await t.test(`${tt.tree};${tt.cycle} (${branchNames.length} branches)`, async () => {
          const tree = await f.tree(`${tt.tree};${tt.cycle}`);
          assert.equal(tree.entries, tt.entries, 'entries');
          const problems: string[] = [];
          const picked: BranchInfo[] = [];
          let unsupportedOther = 0;
          for (const name of branchNames) {
            const tb = tt.branches[name]!;
            const b = tree.branch(name);
            if (!b) {
              problems.push(`${name}: not found in the tree`);
              continue;
            }
            if (!b.type) {
              if (isNumericBranch(tb)) problems.push(`${name}: numeric ${tb.kind} branch is not readable: ${b.unsupported}`);
              else unsupportedOther++;
              continue;
            }
            picked.push(b);
          }
          // Read twice: in one batch, and in odd-sized steps that cut through baskets.
          const whole = await readAll(new TreeReader(tree, picked), tree.entries, Math.max(1, tree.entries));
          const step = Math.max(1, Math.floor(tree.entries / 7) + 3);
          const stepped = await readAll(new TreeReader(tree, picked), tree.entries, step);
          let compared = 0;
          for (const b of picked) {
            const tb = tt.branches[b.name]!;
            for (const [label, cols] of [['whole', whole], [`step ${step}`, stepped]] as const) {
              const col = cols.get(b.name);
              if (!col) {
                problems.push(`${b.name}: no column (${label})`);
                continue;
              }
              const res = compareColumn(tb, col);
              if (!res.ok) {
                if (isNumericBranch(tb) || label === 'whole') problems.push(`${label}: ${formatResult(b.name, res)}`);
              } else compared++;
            }
          }
          t.diagnostic(`${tt.tree};${tt.cycle}: ${compared / 2} branches match; ${unsupportedOther} object branches not read`);
          assert.deepEqual(problems.slice(0, 40), [], `${problems.length} problem(s)`);
        });
      }
    } finally {
      await f.close();
    }
  });
}

test('every ROOT file in testdata: all trees listable, every readable branch readable', { skip: present ? false : `HEPML_TESTDATA not found: ${dir}` }, async (t) => {
  const files = readdirSync(join(dir, 'root')).filter((n) => n.endsWith('.root')).sort();
  for (const name of files) {
    await t.test(name, async () => {
      const f = await RootFile.open(join(dir, 'root', name));
      try {
        for (const k of await f.treeKeys()) {
          const tree = await f.tree(`${k.path};${k.cycle}`);
          const readable = tree.readable();
          const reader = new TreeReader(tree, readable);
          let rows = 0;
          for await (const batch of reader.batches(0, tree.entries, 5000)) {
            rows += batch.entryStop - batch.entryStart;
            for (const c of batch.columns) assert.ok(c.data, c.name);
          }
          assert.equal(rows, tree.entries);
        }
      } finally {
        await f.close();
      }
    });
  }
});
