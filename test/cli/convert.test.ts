/**
 * hep-ml convert end to end: features rows → Parquet / TFRecord / Arrow (files, stdout, shards with a
 * manifest) and back, byte for byte in value; the published layout; DuckDB over a sharded directory; errors.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fromRecordBatch, openIpcStream } from '../../src/columnar/index.js';
import { openDataset } from '../../src/convert/index.js';
import { concatColumns, formatColumnType, type ColumnData } from '../../src/root/columns.js';
import { BIN } from '../helpers/cli.js';

const hepml = `node ${BIN}`;
function sh(cmd: string, cwd?: string): { code: number; stdout: Buffer; stderr: string } {
  const r = spawnSync('bash', ['-c', `set -o pipefail; ${cmd}`], { cwd, encoding: 'buffer', timeout: 180_000, maxBuffer: 1 << 28 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr.toString() };
}

let d = '';
let src = '';
before(() => {
  d = mkdtempSync(join(tmpdir(), 'hepml-convert-test-'));
  src = join(d, 'feat.arrow');
  const r = sh(`${hepml} generate --process ttbar --events 300 --seed 9 | ${hepml} features --label ttbar --batch-size 64 -o ${src}`);
  assert.equal(r.code, 0, r.stderr);
});
after(() => rmSync(d, { recursive: true, force: true }));

async function readAll(path: string): Promise<{ fields: string[]; cols: Map<string, ColumnData>; metadata: Record<string, string>; rows: number }> {
  const { source } = await openDataset(path);
  const parts = new Map<string, ColumnData[]>();
  let rows = 0;
  for await (const b of source.batches()) {
    rows += b.entryStop - b.entryStart;
    for (const c of b.columns) {
      if (!parts.has(c.name)) parts.set(c.name, []);
      parts.get(c.name)!.push(c.data);
    }
  }
  await source.close();
  return {
    fields: source.fields.map((f) => `${f.name}:${formatColumnType(f.type)}`),
    cols: new Map([...parts].map(([k, v]) => [k, concatColumns(v)])),
    metadata: source.metadata,
    rows,
  };
}

function leaf(d: ColumnData): ArrayLike<number | bigint> {
  let c = d;
  while (c.kind === 'fixed' || c.kind === 'list') c = c.child;
  return (c as { values: ArrayLike<number | bigint> }).values;
}

async function assertSameValues(a: string, b: string, opts: { intAsBig?: boolean } = {}): Promise<void> {
  const [x, y] = [await readAll(a), await readAll(b)];
  assert.equal(y.rows, x.rows);
  for (const [name, col] of x.cols) {
    const other = y.cols.get(name);
    assert.ok(other, `column ${name} in ${b}`);
    const [u, v] = [leaf(col), leaf(other)];
    assert.equal(v.length, u.length, name);
    for (let i = 0; i < u.length; i++) if (Number(u[i]) !== Number(v[i])) assert.fail(`${name}[${i}]: ${u[i]} vs ${v[i]} (${a} vs ${b})`);
  }
  void opts;
}

test('arrow → parquet (every codec) → arrow: same schema, same values, metadata kept', async () => {
  for (const c of ['snappy', 'zstd', 'gzip', 'none']) {
    const pq = join(d, `f-${c}.parquet`);
    const r = sh(`${hepml} convert ${src} --to parquet --compression ${c} --row-group-size 50 -o ${pq} --json`);
    assert.equal(r.code, 0, r.stderr);
    const s = JSON.parse(r.stdout.toString());
    assert.equal(s.inputFormat, 'arrow');
    assert.equal(s.compression, c);
    const back = join(d, `back-${c}.arrow`);
    const r2 = sh(`${hepml} convert ${pq} --to arrow -o - > ${back}`);
    assert.equal(r2.code, 0, r2.stderr);
    await assertSameValues(src, back);
    const [a, b] = [await readAll(src), await readAll(back)];
    assert.deepEqual(b.fields, a.fields, 'FixedSizeList sizes and dtypes survive the round trip');
    assert.equal(b.metadata['hep-ml.features.recipe'], 'sparkdltrigger');
  }
});

test('arrow → tfrecord (plain, gzip) → arrow; sharded TFRecord keeps exact types through the manifest', async () => {
  for (const c of ['none', 'gzip']) {
    const tf = join(d, `f.${c === 'gzip' ? 'tfrecord.gz' : 'tfrecord'}`);
    const r = sh(`${hepml} convert ${src} --to tfrecord --compression ${c} -o ${tf}`);
    assert.equal(r.code, 0, r.stderr);
    await assertSameValues(src, tf);
  }
  // a *.gz name without --compression is TensorFlow's GZIP TFRecord, as tf.data expects of it; --compression none wins
  const gz = join(d, 'named.tfrecord.gz');
  assert.equal(sh(`${hepml} convert ${src} --to tfrecord -o ${gz}`).code, 0);
  assert.deepEqual([...readFileSync(gz).subarray(0, 2)], [0x1f, 0x8b], 'gzip magic');
  await assertSameValues(src, gz);
  assert.equal(sh(`${hepml} convert ${src} --to tfrecord --compression none -o ${gz}`).code, 0);
  assert.notDeepEqual([...readFileSync(gz).subarray(0, 2)], [0x1f, 0x8b], '--compression none is kept');
  const dir = join(d, 'tf-shards');
  const r = sh(`${hepml} convert ${src} --to tfrecord --rows-per-file 70 -o ${dir}`);
  assert.equal(r.code, 0, r.stderr);
  const m = JSON.parse(readFileSync(join(dir, '_manifest.json'), 'utf8'));
  const n = (await readAll(src)).rows;
  assert.equal(m.rows, n);
  assert.equal(m.files.length, Math.ceil(n / 70));
  assert.deepEqual(readdirSync(dir).sort(), ['_manifest.json', ...m.files.map((f: { path: string }) => f.path)].sort());
  assert.equal(m.files[0].path, 'part-00000.tfrecord');
  const back = await readAll(dir);
  assert.deepEqual(back.fields, (await readAll(src)).fields, 'the manifest restores Int32/Int64 and fixed sizes');
  await assertSameValues(src, dir);
});

test('--layout sparkdltrigger: exactly HLF_input, GRU_input (15219), encoded_label; Parquet as array<double>', async () => {
  const pq = join(d, 'pub.parquet');
  const r = sh(`${hepml} convert ${src} --to parquet --layout sparkdltrigger -o ${pq}`);
  assert.equal(r.code, 0, r.stderr);
  const p = await readAll(pq);
  assert.deepEqual(p.fields, ['HLF_input:list<float64>', 'GRU_input:list<float64>', 'encoded_label:list<float64>']);
  const tf = join(d, 'pub.tfrecord');
  assert.equal(sh(`${hepml} convert ${src} --to tfrecord --layout sparkdltrigger -o ${tf}`).code, 0);
  const t = await readAll(tf);
  assert.deepEqual(t.fields, ['HLF_input:fixed<14, float32>', 'GRU_input:fixed<15219, float32>', 'encoded_label:fixed<3, float32>']);
  const a = await readAll(src);
  for (const k of ['HLF_input', 'GRU_input', 'encoded_label']) {
    const [u, v, w] = [leaf(a.cols.get(k)!), leaf(p.cols.get(k)!), leaf(t.cols.get(k)!)];
    assert.equal(v.length, u.length);
    for (let i = 0; i < u.length; i += 97) assert.ok(u[i] === v[i] && u[i] === w[i], k);
  }
  const bad = sh(`${hepml} generate --process qcd --events 5 | ${hepml} convert - --to parquet --layout sparkdltrigger -o ${join(d, 'x.parquet')}`);
  assert.equal(bad.code, 8);
  assert.match(bad.stderr, /HLF_input is missing/);
});

test('sharded Parquet: DuckDB reads the directory glob, values equal the source', async (t) => {
  let duck: typeof import('@duckdb/node-api');
  try {
    duck = await import('@duckdb/node-api');
  } catch (e) {
    return t.skip(`@duckdb/node-api cannot load: ${(e as Error).message} — DuckDB interop SKIPPED`);
  }
  const dir = join(d, 'pq-shards');
  const r = sh(`${hepml} convert ${src} --to parquet --rows-per-file 100 -o ${dir}`);
  assert.equal(r.code, 0, r.stderr);
  const inst = await duck.DuckDBInstance.create();
  const con = await inst.connect();
  const res = await con.runAndReadAll(`SELECT count(*)::INTEGER AS n, sum(list_sum(HLF_input))::DOUBLE AS s, sum(label)::INTEGER AS l FROM read_parquet('${dir}/*.parquet')`);
  const [row] = res.getRowObjects() as { n: number; s: number; l: number }[];
  const a = await readAll(src);
  assert.equal(row!.n, a.rows);
  assert.equal(row!.l, a.rows); // label 1 everywhere
  let s = 0;
  const h = leaf(a.cols.get('HLF_input')!);
  for (let i = 0; i < h.length; i++) s += Number(h[i]);
  assert.ok(Math.abs(row!.s - s) <= 1e-9 * Math.abs(s) + 1e-6, `${row!.s} vs ${s}`);
  con.closeSync?.();
  // a second run replaces the dataset; a directory that is not a dataset is never replaced
  assert.equal(sh(`${hepml} convert ${src} --to parquet --rows-per-file 1000 -o ${dir}`).code, 0);
  assert.equal(JSON.parse(readFileSync(join(dir, '_manifest.json'), 'utf8')).files.length, 1);
  const foreign = join(d, 'mine');
  mkdirSync(foreign);
  writeFileSync(join(foreign, 'notes.txt'), 'keep me');
  const no = sh(`${hepml} convert ${src} --to parquet --rows-per-file 10 -o ${foreign}`);
  assert.equal(no.code, 2);
  assert.match(no.stderr, /not a hep-ml dataset/);
  assert.deepEqual(readdirSync(foreign), ['notes.txt']);
});

test('pipes: features | convert - --to parquet; convert --to tfrecord -o - is a valid TFRecord stream', async () => {
  const pq = join(d, 'pipe.parquet');
  const r = sh(`${hepml} generate --process wjets --events 50 | ${hepml} features | ${hepml} convert - --to parquet -o ${pq}`);
  assert.equal(r.code, 0, r.stderr);
  assert.ok((await readAll(pq)).rows > 30);
  const tf = join(d, 'stdout.tfrecord');
  const r2 = sh(`${hepml} convert ${src} --to tfrecord -o - > ${tf}`);
  assert.equal(r2.code, 0, r2.stderr);
  await assertSameValues(src, tf);
});

test('errors: codec not available, missing input, corrupt TFRecord (record index), no partial output', async () => {
  const a = sh(`${hepml} convert ${src} --to tfrecord --compression zstd -o ${join(d, 'z.tfrecord')}`);
  assert.equal(a.code, 2);
  assert.match(a.stderr, /zstd is not available for tfrecord/);
  const b = sh(`${hepml} convert ${join(d, 'nope.arrow')} --to parquet -o ${join(d, 'z.parquet')}`);
  assert.equal(b.code, 3);
  const tf = join(d, 'c.tfrecord');
  assert.equal(sh(`${hepml} convert ${src} --to tfrecord -o ${tf}`).code, 0);
  const bytes = readFileSync(tf);
  const recLen = Number(bytes.readBigUInt64LE(0)) + 16;
  bytes[recLen * 3 + 12 + 100] ^= 0xff; // a payload byte of record 3
  writeFileSync(tf, bytes);
  const before = readdirSync(d).sort();
  const c = sh(`${hepml} convert ${tf} --to parquet -o ${join(d, 'c.parquet')}`);
  assert.equal(c.code, 7, c.stderr);
  assert.match(c.stderr, /record 3\b/);
  assert.equal(c.stderr.trim().split('\n').length, 1);
  assert.deepEqual(readdirSync(d).sort(), before, 'no partial output file');
  assert.ok(!existsSync(join(d, 'c.parquet')));
});
