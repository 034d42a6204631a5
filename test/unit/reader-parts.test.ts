/**
 * The reader's pure building blocks, without ROOT files: branch globs (glob.ts), step sizes and entry
 * ranges (reader.ts), leaf dimensions and Double32/Float16 codecs (tree.ts), big-endian value decoding
 * (decode.ts), and column slicing/concatenation (columns.ts).
 *
 * Packed values are encoded here with ROOT's own writer formulas (TBufferFile::WriteDouble32 /
 * WriteWithNbits, TStreamerElement::GetRange) and decoded by hep-ml.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { CorruptDataError, EntryRangeError, UsageError } from '../../src/errors.js';
import { globToRegExp, isGlob } from '../../src/root/glob.js';
import { checkEntryRange, parseStepSize } from '../../src/root/reader.js';
import { packedCodec, parseDims, type ValueCodec } from '../../src/root/tree.js';
import { countBits, decodeBits, decodeValues, nativeValues, stringLength } from '../../src/root/decode.js';
import type { RawBasket } from '../../src/root/basket.js';
import {
  allocTyped,
  columnRows,
  concatColumns,
  sliceRows,
  type ColumnData,
  type DType,
  type NumericArray,
} from '../../src/root/columns.js';
import { offsetsOf, rng, utf8Column } from '../fixtures/columnar-data.js';

// ---------------------------------------------------------------------------------------------------
// glob.ts

describe('glob.ts: globToRegExp / isGlob', () => {
  const m = (glob: string, name: string) => globToRegExp(glob).test(name);

  test('* matches any run (also empty), ? exactly one character', () => {
    assert.ok(m('Muon_*', 'Muon_pt'));
    assert.ok(m('Muon_*', 'Muon_'));
    assert.ok(!m('Muon_*', 'nMuon'));
    assert.ok(m('*_pt', 'Jet_pt'));
    assert.ok(!m('*_pt', 'Jet_pt_raw'), 'anchored at the end');
    assert.ok(m('Jet_?t', 'Jet_pt'));
    assert.ok(!m('Jet_?t', 'Jet_t'), '? needs one character');
    assert.ok(!m('Jet_?t', 'Jet_ppt'));
    assert.ok(m('*', ''));
  });

  test('[abc] and [a-z] classes, [!abc] negated classes', () => {
    assert.ok(m('Muon_[pe]t', 'Muon_pt'));
    assert.ok(m('Muon_[pe]t', 'Muon_et'));
    assert.ok(!m('Muon_[pe]t', 'Muon_xt'));
    assert.ok(m('x[0-9]', 'x7'));
    assert.ok(!m('x[0-9]', 'xa'));
    assert.ok(m('Muon_[!pe]t', 'Muon_xt'));
    assert.ok(!m('Muon_[!pe]t', 'Muon_pt'));
    assert.ok(!m('Muon_[!pe]t', 'Muon_et'));
  });

  test('regex metacharacters are literal: dots, plus, parentheses, ^, $, |, braces, backslash', () => {
    assert.ok(m('Jet.PT', 'Jet.PT'));
    assert.ok(!m('Jet.PT', 'JetxPT'), 'a dot is not "any character"');
    assert.ok(m('a+b', 'a+b'));
    assert.ok(!m('a+b', 'aab'));
    assert.ok(m('f(x)|g{2}^$', 'f(x)|g{2}^$'));
    assert.ok(m('a\\b', 'a\\b'));
    assert.ok(m('EFlowTrack.*', 'EFlowTrack.PT'));
    assert.ok(!m('EFlowTrack.*', 'EFlowTrackPT'));
  });

  test('an unclosed [ and a lone ] are literal', () => {
    assert.ok(m('a[', 'a['));
    assert.ok(m('a[]', 'a[]'));
    assert.ok(m('x[5', 'x[5'));
    assert.ok(m('x]', 'x]'));
    assert.ok(!m('x]', 'x'));
  });

  test('branch names with [dims] are globs; as globs the brackets are a class, not literal', () => {
    assert.equal(isGlob('ArrayI16[10]'), true);
    assert.equal(isGlob('Jet.TrimmedP4[5]'), true);
    assert.equal(isGlob('Jet.PT'), false);
    assert.equal(isGlob('Muon_pt'), false);
    assert.equal(isGlob('Muon_*'), true);
    assert.equal(isGlob('Muon_p?'), true);
    // `[10]` is the class {1, 0}: the glob does not match the name it was copied from
    assert.ok(!m('ArrayI16[10]', 'ArrayI16[10]'));
    assert.ok(m('ArrayI16[10]', 'ArrayI161'));
    assert.ok(!m('Jet.TrimmedP4[5]', 'Jet.TrimmedP4[5]'));
    assert.ok(m('Jet.TrimmedP4[5]', 'Jet.TrimmedP45'));
    // ... but a class holding '[' matches the literal bracket: the way to glob over such names
    assert.ok(m('ArrayI16[[]10]', 'ArrayI16[10]'));
    assert.ok(m('Array*[[]10]', 'ArrayU64[10]'));
  });

  test("']' first in a class is a member, as in fnmatch: []x] and [!]x]", () => {
    assert.ok(m('a[]]', 'a]'));
    assert.ok(!m('a[]]', 'a['));
    assert.ok(m('a[]x]', 'ax'));
    assert.ok(m('a[]x]', 'a]'));
    // [!]x] is "one character that is neither ] nor x"
    assert.ok(m('a[!]x]', 'ab'));
    assert.ok(!m('a[!]x]', 'a]'));
    assert.ok(!m('a[!]x]', 'ax'));
  });
});

// ---------------------------------------------------------------------------------------------------
// reader.ts: parseStepSize, checkEntryRange

describe('reader.ts: parseStepSize', () => {
  test('sizes: decimal (kB, MB, GB, TB) and binary (KiB, MiB, GiB) units, any case, optional space', () => {
    assert.deepEqual(parseStepSize('100 MB'), { bytes: 100e6 });
    assert.deepEqual(parseStepSize('100MB'), { bytes: 100e6 });
    assert.deepEqual(parseStepSize('64MiB'), { bytes: 64 * 1024 * 1024 });
    assert.deepEqual(parseStepSize('64 mib'), { bytes: 64 * 1024 * 1024 });
    assert.deepEqual(parseStepSize('1.5 GB'), { bytes: 1.5e9 });
    assert.deepEqual(parseStepSize('2 GiB'), { bytes: 2 * 1024 ** 3 });
    assert.deepEqual(parseStepSize('10 kb'), { bytes: 10_000 });
    assert.deepEqual(parseStepSize('10 KiB'), { bytes: 10_240 });
    assert.deepEqual(parseStepSize('1 TB'), { bytes: 1e12 });
    assert.deepEqual(parseStepSize('512 B'), { bytes: 512 });
    assert.deepEqual(parseStepSize('  3 MB  '), { bytes: 3e6 });
  });

  test('plain integers are entries (number or string)', () => {
    assert.deepEqual(parseStepSize('1000'), { entries: 1000 });
    assert.deepEqual(parseStepSize(' 1000 '), { entries: 1000 });
    assert.deepEqual(parseStepSize(1000), { entries: 1000 });
    assert.deepEqual(parseStepSize(1), { entries: 1 });
  });

  for (const bad of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, '0', '-1', 'abc', '', '1.5', '1e3', '100 M', 'MB', '0 MB', '0.0001 B', '5 XB']) {
    test(`${JSON.stringify(typeof bad === 'number' ? String(bad) : bad)} (${typeof bad}) is a UsageError`, () => {
      assert.throws(() => parseStepSize(bad), (e: unknown) => e instanceof UsageError && e.exitCode === 2);
    });
  }
});

describe('reader.ts: checkEntryRange', () => {
  const ctx = { file: 'f.root', tree: 't' };
  const rangeErr = (re?: RegExp) => (e: unknown) => e instanceof EntryRangeError && e.exitCode === 6 && (!re || re.test(e.message)) && e.describe().startsWith("f.root: tree 't'");

  test('no bounds: all entries; also for an empty tree', () => {
    assert.deepEqual(checkEntryRange(100, undefined, undefined, ctx), [0, 100]);
    assert.deepEqual(checkEntryRange(0, undefined, undefined, ctx), [0, 0]);
  });

  test('stop beyond the end is clipped; stop == start is an empty range', () => {
    assert.deepEqual(checkEntryRange(100, 10, 1000, ctx), [10, 100]);
    assert.deepEqual(checkEntryRange(100, undefined, 1000, ctx), [0, 100]);
    assert.deepEqual(checkEntryRange(100, 5, 5, ctx), [5, 5]);
    assert.deepEqual(checkEntryRange(100, undefined, 0, ctx), [0, 0]);
    assert.deepEqual(checkEntryRange(100, 99, undefined, ctx), [99, 100]);
    assert.deepEqual(checkEntryRange(0, 0, undefined, ctx), [0, 0]);
    assert.deepEqual(checkEntryRange(0, 0, 10, ctx), [0, 0]);
  });

  test('start == n (n > 0) and start > n are errors', () => {
    assert.throws(() => checkEntryRange(100, 100, undefined, ctx), rangeErr(/beyond the last entry.*100 entries/));
    assert.throws(() => checkEntryRange(100, 101, 200, ctx), rangeErr(/beyond/));
    assert.throws(() => checkEntryRange(0, 1, undefined, ctx), rangeErr(/beyond/));
  });

  test('stop < start, negative and fractional bounds are errors', () => {
    assert.throws(() => checkEntryRange(100, 50, 10, ctx), rangeErr(/before entry start 50/));
    assert.throws(() => checkEntryRange(100, -1, undefined, ctx), rangeErr(/non-negative integer/));
    assert.throws(() => checkEntryRange(100, 1.5, undefined, ctx), rangeErr(/non-negative integer/));
    assert.throws(() => checkEntryRange(100, 0, -3, ctx), rangeErr(/entry stop -3/));
    assert.throws(() => checkEntryRange(100, 0, 2.5, ctx), rangeErr(/entry stop 2\.5/));
    assert.throws(() => checkEntryRange(100, Number.NaN, undefined, ctx), rangeErr());
  });
});

// ---------------------------------------------------------------------------------------------------
// tree.ts: parseDims, packedCodec

describe('tree.ts: parseDims', () => {
  test('fixed dimensions, counters, and mixed', () => {
    assert.deepEqual(parseDims('x[3][4]'), { counter: undefined, dims: [3, 4] });
    assert.deepEqual(parseDims('x[3][4]/F'), { counter: undefined, dims: [3, 4] });
    assert.deepEqual(parseDims('Muon_pt[nMuon]'), { counter: 'nMuon', dims: [] });
    assert.deepEqual(parseDims('Muon_pt[nMuon]/F'), { counter: 'nMuon', dims: [] });
    assert.deepEqual(parseDims('X[n][3]'), { counter: 'n', dims: [3] });
    assert.deepEqual(parseDims('X[n][3][2]'), { counter: 'n', dims: [3, 2] });
    assert.deepEqual(parseDims('Track.PT[Track_]'), { counter: 'Track_', dims: [] });
    assert.deepEqual(parseDims('x[ 7 ]'), { counter: undefined, dims: [7] });
    assert.deepEqual(parseDims('x'), { counter: undefined, dims: [] });
    assert.deepEqual(parseDims(''), { counter: undefined, dims: [] });
  });

  test('a Double32 range [a,b,n] is not a dimension; text after the type code is ignored', () => {
    assert.deepEqual(parseDims('d32[0,1,10]'), { counter: undefined, dims: [] });
    assert.deepEqual(parseDims('d32[3]/d[0,1,10]'), { counter: undefined, dims: [3] });
    assert.deepEqual(parseDims('x/F[7]'), { counter: undefined, dims: [] });
  });

  test('a name after a fixed dimension is not a counter (only the first bracket can be)', () => {
    assert.deepEqual(parseDims('x[3][n]'), { counter: undefined, dims: [3] });
  });
});

describe('tree.ts: packedCodec (TStreamerElement::GetRange, ReadDouble32, ReadFloat16)', () => {
  type Packed = Extract<ValueCodec, { kind: 'packed' }>;
  const pc = (k: 'double32' | 'float16', title: string) => packedCodec(k, title) as Packed;

  test("'[0,1,10]': factor (2^10)/(1-0), 4 bytes", () => {
    const c = pc('double32', '[0,1,10]');
    assert.equal(c.kind, 'packed');
    assert.equal(c.mode, 'factor');
    assert.equal(c.factor, 1024);
    assert.equal(c.xmin, 0);
    assert.equal(c.nbits, 10);
    assert.equal(c.bytes, 4);
    assert.equal(c.dtype, 'float64');
    assert.equal(pc('float16', '[0,1,10]').dtype, 'float32');
    assert.equal(pc('float16', '[0,1,10]').factor, 1024);
  });

  test("'[-pi,pi]': 32 bits, factor 0xffffffff/(2 pi); pi variants", () => {
    const c = pc('double32', '[-pi,pi]');
    assert.equal(c.mode, 'factor');
    assert.equal(c.nbits, 32);
    assert.equal(c.xmin, -Math.PI);
    assert.equal(c.factor, 0xffffffff / (2 * Math.PI));
    assert.equal(pc('double32', '[ -PI , Pi ]').factor, 0xffffffff / (2 * Math.PI));
    assert.equal(pc('double32', '[0,2pi]').factor, 0xffffffff / (2 * Math.PI));
    assert.equal(pc('double32', '[0,twopi,16]').factor, 65536 / (2 * Math.PI));
    assert.equal(pc('double32', '[-pi/2,pi/2,20]').factor, 2 ** 20 / Math.PI);
    assert.equal(pc('double32', '[-pi/4,pi/4,8]').xmin, -Math.PI / 4);
    assert.equal(pc('double32', '[-2*pi,2*pi]').xmin, -2 * Math.PI);
  });

  test("'[0,0,14]': nbits 14 truncated float (3 bytes); nbits >= 15 without a range is a plain float", () => {
    const c = pc('double32', '[0,0,14]');
    assert.deepEqual([c.mode, c.nbits, c.bytes, c.factor], ['nbits', 14, 3, 0]);
    assert.deepEqual([pc('double32', '[0,0,2]').mode, pc('double32', '[0,0,2]').nbits], ['nbits', 2]);
    // GetRange: `if (xmin >= xmax && nbits < 15) xmin = nbits + 0.1`; else xmin stays 0 → ReadDouble32 reads a float
    assert.equal(pc('double32', '[0,0,15]').mode, 'float');
    assert.equal(pc('double32', '[0,0,16]').mode, 'float');
    // ... and ReadFloat16 takes nbits 0 as 12
    assert.deepEqual([pc('float16', '[0,0,16]').mode, pc('float16', '[0,0,16]').nbits], ['nbits', 12]);
    assert.deepEqual([pc('float16', '[0,0,8]').mode, pc('float16', '[0,0,8]').nbits], ['nbits', 8]);
  });

  test("no range: Double32 is a float, Float16 is nbits 12", () => {
    for (const title of ['', 'a comment', '[3]', '[n]']) {
      const d = pc('double32', title);
      assert.deepEqual([d.mode, d.bytes, d.dtype], ['float', 4, 'float64'], title);
      const f = pc('float16', title);
      assert.deepEqual([f.mode, f.nbits, f.bytes, f.dtype], ['nbits', 12, 3, 'float32'], title);
    }
  });

  test('a dimension before the range is skipped; bad nbits falls back to 32; xmin >= xmax follows GetRange', () => {
    assert.equal(pc('double32', '[3][0,1,10]').factor, 1024);
    assert.equal(pc('double32', 'x[3]/d[0,1,10]').factor, 1024);
    assert.equal(pc('double32', '[0,1]').factor, 0xffffffff);
    assert.equal(pc('double32', '[0,1,40]').nbits, 32);
    assert.equal(pc('double32', '[0,1,40]').factor, 0xffffffff);
    assert.equal(pc('double32', '[0,1,1]').factor, 0xffffffff, 'nbits < 2 is reset to 32');
    // xmin >= xmax with nbits >= 15: GetRange leaves xmin as parsed, and ReadDouble32 takes (int)xmin as nbits
    assert.equal(pc('double32', '[0,-1]').mode, 'float');
    assert.deepEqual([pc('double32', '[1,0]').mode, pc('double32', '[1,0]').nbits], ['nbits', 1]);
    assert.equal(pc('double32', '[-10, 10, 12]').factor, 4096 / 20);
    assert.equal(pc('double32', '[-10, 10, 12]').xmin, -10);
  });
});

// ---------------------------------------------------------------------------------------------------
// decode.ts

const BYTES: Record<DType, number> = {
  bool: 1, int8: 1, uint8: 1, int16: 2, uint16: 2, int32: 4, uint32: 4, int64: 8, uint64: 8, float32: 4, float64: 8,
};

/** Big-endian bytes of values of a dtype, as ROOT writes them. */
function beBytes(dtype: DType, values: (number | bigint)[]): Uint8Array {
  const w = BYTES[dtype];
  const out = new Uint8Array(values.length * w);
  const v = new DataView(out.buffer);
  values.forEach((x, i) => {
    const p = i * w;
    switch (dtype) {
      case 'bool':
      case 'uint8':
        return v.setUint8(p, Number(x));
      case 'int8':
        return v.setInt8(p, Number(x));
      case 'int16':
        return v.setInt16(p, Number(x));
      case 'uint16':
        return v.setUint16(p, Number(x));
      case 'int32':
        return v.setInt32(p, Number(x));
      case 'uint32':
        return v.setUint32(p, Number(x));
      case 'int64':
        return v.setBigInt64(p, BigInt(x));
      case 'uint64':
        return v.setBigUint64(p, BigInt(x));
      case 'float32':
        return v.setFloat32(p, Number(x));
      case 'float64':
        return v.setFloat64(p, Number(x));
    }
  });
  return out;
}

const SAMPLES: Record<DType, (number | bigint)[]> = {
  bool: [0, 1, 1, 0],
  int8: [0, 1, -1, 127, -128, 42],
  uint8: [0, 1, 255, 128],
  int16: [0, 1, -1, 32767, -32768, 0x1234, -0x1234],
  uint16: [0, 1, 65535, 0x8001, 0x1234],
  int32: [0, 1, -1, 2147483647, -2147483648, 0x12345678, -0x12345678],
  uint32: [0, 1, 0xffffffff, 0x80000001, 0x12345678],
  int64: [0n, 1n, -1n, 2n ** 53n + 1n, -(2n ** 53n) - 3n, 2n ** 63n - 1n, -(2n ** 63n), 0x0102030405060708n],
  uint64: [0n, 1n, 2n ** 64n - 1n, 2n ** 53n + 1n, 2n ** 63n + 5n, 0x0102030405060708n],
  float32: [0, -0, 1.5, -2.25, Math.fround(Math.PI), Infinity, -Infinity, Math.fround(1e-40), Math.fround(3.4e38)],
  float64: [0, -0, 1.5, -2.25, Math.PI, Infinity, -Infinity, 5e-324, 1.7976931348623157e308, 0.1],
};

describe('decode.ts: decodeValues (plain big-endian)', () => {
  for (const dtype of Object.keys(SAMPLES) as DType[]) {
    test(`${dtype}: every value, at a nonzero outIndex, from an unaligned source position`, () => {
      const vals = SAMPLES[dtype];
      const w = BYTES[dtype];
      const be = beBytes(dtype, vals);
      // the source: 3 junk bytes, then the values, then junk (an odd offset in an odd-offset view)
      const backing = new Uint8Array(be.length + 10).fill(0xee);
      backing.set(be, 4);
      const src = backing.subarray(1);
      const pos = 3;
      const outIndex = 3;
      const out = allocTyped(dtype, vals.length + outIndex + 2);
      const sentinel = dtype === 'int64' || dtype === 'uint64' ? 77n : 77;
      (out as unknown as { fill(v: unknown): void }).fill(sentinel);
      const next = decodeValues({ kind: 'plain', dtype, bytes: w }, src, pos, vals.length, out, outIndex);
      assert.equal(next, pos + vals.length * w, 'returned position');
      const got = Array.from(out as ArrayLike<number | bigint>);
      for (let i = 0; i < outIndex; i++) assert.equal(got[i], sentinel, `before outIndex: ${i}`);
      for (let i = 0; i < 2; i++) assert.equal(got[outIndex + vals.length + i], sentinel, 'after the values');
      const want = vals.map((x) => (typeof x === 'bigint' ? x : dtype === 'float32' ? Math.fround(x) : x));
      assert.deepEqual(got.slice(outIndex, outIndex + vals.length), want);
      // -0 stays -0
      if (dtype.startsWith('float')) assert.ok(Object.is(got[outIndex + 1], -0));
      // the source is not modified
      assert.deepEqual(src.subarray(pos, pos + be.length), be);
    });
  }

  test('n = 0 returns pos and writes nothing', () => {
    const out = new Int32Array(2).fill(9);
    assert.equal(decodeValues({ kind: 'plain', dtype: 'int32', bytes: 4 }, new Uint8Array(0), 0, 0, out, 1), 0);
    assert.deepEqual(Array.from(out), [9, 9]);
  });

  test('NaN payloads (quiet, signalling, negative) are preserved bit for bit', () => {
    const f32bits = [0x7fc00000, 0xffc00000, 0x7f800001, 0xffc00001, 0x7fbfffff];
    const src32 = new Uint8Array(4 * f32bits.length);
    f32bits.forEach((b, i) => new DataView(src32.buffer).setUint32(4 * i, b));
    const out32 = new Float32Array(f32bits.length + 1);
    decodeValues({ kind: 'plain', dtype: 'float32', bytes: 4 }, src32, 0, f32bits.length, out32, 1);
    assert.deepEqual(Array.from(new Uint32Array(out32.buffer, 4)), f32bits);

    const f64bits = [0x7ff8000000000000n, 0xfff8000000000000n, 0x7ff0000000000001n, 0xfff8000000000123n, 0x7ff7ffffffffffffn];
    const src64 = new Uint8Array(8 * f64bits.length);
    f64bits.forEach((b, i) => new DataView(src64.buffer).setBigUint64(8 * i, b));
    const out64 = new Float64Array(f64bits.length + 2);
    decodeValues({ kind: 'plain', dtype: 'float64', bytes: 8 }, src64, 0, f64bits.length, out64, 2);
    assert.deepEqual(Array.from(new BigUint64Array(out64.buffer, 16)), f64bits);
  });

  test('an unsupported plain width is an error, not garbage', () => {
    assert.throws(() => decodeValues({ kind: 'plain', dtype: 'int32', bytes: 3 }, new Uint8Array(9), 0, 3, new Int32Array(3), 0), /unsupported value size 3/);
  });
});

/** TBufferFile::WriteDouble32 with a factor: UInt_t(0.5 + factor*(x - xmin)), x clamped to [xmin, xmax]. */
function encodeFactor(x: number, xmin: number, xmax: number, factor: number): number {
  const c = Math.min(Math.max(x, xmin), xmax);
  return Math.floor(0.5 + factor * (c - xmin)) >>> 0;
}

/** TBufferFile::WriteWithNbits: 1 exponent byte + 2 mantissa bytes (sign in bit nbits+1). */
function encodeNbits(x: number, nbits: number): [number, number] {
  const f = new Float32Array([x]);
  const i = new Int32Array(f.buffer)[0]!;
  const exp = ((i << 1) >>> 24) & 0xff;
  let man = ((1 << (nbits + 1)) - 1) & (i >> (23 - nbits - 1));
  man++;
  man >>= 1;
  if (man & (1 << nbits)) man = (1 << nbits) - 1;
  if (f[0]! < 0) man |= 1 << (nbits + 1);
  return [exp, man & 0xffff];
}

/** TBufferFile::ReadWithNbits, written out independently. */
function decodeNbitsRef(exp: number, man: number, nbits: number): number {
  const i = new Int32Array(1);
  const f = new Float32Array(i.buffer);
  i[0] = (exp << 23) | ((man & ((1 << (nbits + 1)) - 1)) << (23 - nbits));
  return man & (1 << (nbits + 1)) ? -f[0]! : f[0]!;
}

describe('decode.ts: decodeValues (packed Double32/Float16)', () => {
  type Packed = Extract<ValueCodec, { kind: 'packed' }>;

  test("'float' mode: a big-endian float32 widened to float64", () => {
    const codec = packedCodec('double32', '') as Packed;
    const xs = [0, 1.1, -3.75, 1e30, Math.PI];
    const src = beBytes('float32', xs);
    const out = new Float64Array(xs.length + 1);
    assert.equal(decodeValues(codec, src, 0, xs.length, out, 1), 4 * xs.length);
    assert.deepEqual(Array.from(out.subarray(1)), xs.map(Math.fround));
  });

  for (const [kind, title] of [
    ['double32', '[0,1,10]'],
    ['double32', '[-pi,pi]'],
    ['double32', '[-pi,pi,16]'],
    ['double32', '[-10,10,12]'],
    ['float16', '[0,1,10]'],
    ['float16', '[-100,100]'],
  ] as const) {
    test(`'factor' mode ${kind} ${title}: ROOT-encoded uint32 → aint/factor + xmin`, () => {
      const codec = packedCodec(kind, title) as Packed;
      assert.equal(codec.mode, 'factor');
      const xmax = codec.xmin + (codec.nbits < 32 ? 2 ** codec.nbits : 0xffffffff) / codec.factor;
      const r = rng(7);
      const xs = [codec.xmin, xmax, (codec.xmin + xmax) / 2, ...Array.from({ length: 50 }, () => codec.xmin + r() * (xmax - codec.xmin))];
      const aints = xs.map((x) => encodeFactor(x, codec.xmin, xmax, codec.factor));
      const src = new Uint8Array(2 + 4 * xs.length);
      aints.forEach((a, i) => new DataView(src.buffer).setUint32(2 + 4 * i, a));
      const out = kind === 'double32' ? new Float64Array(xs.length + 3) : new Float32Array(xs.length + 3);
      assert.equal(decodeValues(codec, src, 2, xs.length, out, 3), 2 + 4 * xs.length);
      for (let i = 0; i < xs.length; i++) {
        const want = aints[i]! / codec.factor + codec.xmin;
        const got = out[3 + i]!;
        assert.equal(got, kind === 'double32' ? want : Math.fround(want), `value ${i} (aint ${aints[i]})`);
        // and the decoded value is within half a quantum of what was written
        assert.ok(Math.abs(got - xs[i]!) <= 0.5 / codec.factor + 1e-6 * Math.abs(xs[i]!), `value ${i}: ${got} vs ${xs[i]}`);
      }
    });
  }

  test("'nbits' mode, hand-computed: nbits 14, 1.0 = 7f 00 00, -1.5 = 7f a0 00", () => {
    const codec = packedCodec('double32', '[0,0,14]') as Packed;
    assert.deepEqual(encodeNbits(1.0, 14), [0x7f, 0x0000]);
    assert.deepEqual(encodeNbits(-1.5, 14), [0x7f, 0xa000]);
    const src = Uint8Array.of(0x99, 0x7f, 0x00, 0x00, 0x7f, 0xa0, 0x00, 0x80, 0x20, 0x00);
    const out = new Float64Array(4);
    assert.equal(decodeValues(codec, src, 1, 3, out, 1), 10);
    // 0x80 0x2000: exponent 0x80, mantissa bit 13 → 2 * (1 + 0.5) = 3
    assert.deepEqual(Array.from(out), [0, 1, -1.5, 3]);
  });

  for (const [kind, title, nbits] of [
    ['double32', '[0,0,14]', 14],
    ['double32', '[0,0,8]', 8],
    ['double32', '[0,0,2]', 2],
    ['float16', '', 12],
    ['float16', '[0,0,6]', 6],
  ] as const) {
    test(`'nbits' mode ${kind} '${title}' (nbits ${nbits}): ROOT-encoded values round trip within 2^-nbits`, () => {
      const codec = packedCodec(kind, title) as Packed;
      assert.deepEqual([codec.mode, codec.nbits, codec.bytes], ['nbits', nbits, 3]);
      const r = rng(nbits);
      const xs = [0, 1, -1, 0.5, 1234.5678, -1e-3, 3.0e10, ...Array.from({ length: 100 }, () => (r() - 0.5) * 10 ** Math.floor(r() * 10 - 3))];
      const src = new Uint8Array(1 + 3 * xs.length);
      const refs: number[] = [];
      xs.forEach((x, i) => {
        const [e, m] = encodeNbits(x, nbits);
        src[1 + 3 * i] = e;
        src[2 + 3 * i] = m >> 8;
        src[3 + 3 * i] = m & 0xff;
        refs.push(decodeNbitsRef(e, m, nbits));
      });
      const out = kind === 'double32' ? new Float64Array(xs.length + 1) : new Float32Array(xs.length + 1);
      assert.equal(decodeValues(codec, src, 1, xs.length, out, 1), 1 + 3 * xs.length);
      for (let i = 0; i < xs.length; i++) {
        assert.equal(out[1 + i], refs[i], `value ${i} (${xs[i]})`);
        const x = Math.fround(xs[i]!);
        assert.ok(Math.abs(out[1 + i]! - x) <= Math.abs(x) * 2 ** -nbits, `value ${i}: ${out[1 + i]} vs ${x}`);
        assert.equal(Math.sign(out[1 + i]!) || 0, Math.sign(x) || 0, `sign of value ${i}`);
      }
    });
  }
});

describe('decode.ts: nativeValues', () => {
  const basket = (data: Uint8Array, owned: boolean): RawBasket => ({ index: 0, entryStart: 0, entryStop: 1, data, owned });

  for (const dtype of ['int8', 'int16', 'uint32', 'float32', 'int64', 'float64'] as const) {
    test(`${dtype}: in place (owned, aligned), copy (not owned), copy (owned, misaligned) agree`, () => {
      const vals = SAMPLES[dtype];
      const w = BYTES[dtype];
      const be = beBytes(dtype, vals);
      const codec = { kind: 'plain', dtype, bytes: w } as const;
      const want = vals.map((x) => (typeof x === 'bigint' ? x : dtype === 'float32' ? Math.fround(x) : x));

      // owned and aligned: byte-swapped in the basket's own buffer
      const aligned = new Uint8Array(be);
      const a = basket(aligned, true);
      const va = nativeValues(a, codec);
      assert.equal(va.buffer, aligned.buffer, 'in place');
      assert.equal(va.byteOffset, aligned.byteOffset);
      assert.equal(nativeValues(a, codec), va, 'cached on the basket');

      // not owned: the source bytes are left alone
      const shared = new Uint8Array(be);
      const b = basket(shared, false);
      const vb = nativeValues(b, codec);
      assert.notEqual(vb.buffer, shared.buffer, 'copied');
      assert.deepEqual(shared, be, 'a basket that is not owned is not modified');

      // owned but misaligned (a view at odd offset): copied
      const back = new Uint8Array(be.length + 1);
      back.set(be, 1);
      const mis = back.subarray(1);
      const c = basket(mis, true);
      const vc = nativeValues(c, codec);
      if (w > 1) assert.notEqual(vc.buffer, back.buffer, 'misaligned data is copied');

      for (const [label, v] of [['in place', va], ['copy', vb], ['misaligned', vc]] as const) {
        assert.deepEqual(Array.from(v as ArrayLike<number | bigint>), want, label);
        assert.equal(v.constructor, allocTyped(dtype, 0).constructor, `${label}: array class`);
      }
    });
  }

  test('NaN payloads survive the in-place swap', () => {
    const bits = [0xffc00001, 0x7f800001];
    const data = new Uint8Array(8);
    bits.forEach((b, i) => new DataView(data.buffer).setUint32(4 * i, b));
    const v = nativeValues(basket(data, true), { kind: 'plain', dtype: 'float32', bytes: 4 });
    assert.deepEqual(Array.from(new Uint32Array(v.buffer, v.byteOffset, 2)), bits);
  });

  test('a trailing partial value is not decoded', () => {
    const data = Uint8Array.of(0, 0, 0, 5, 0, 0);
    const v = nativeValues(basket(data, false), { kind: 'plain', dtype: 'int32', bytes: 4 });
    assert.deepEqual(Array.from(v as Int32Array), [5]);
  });
});

describe('decode.ts: countBits / decodeBits (fBits with kIsReferenced)', () => {
  const ctx = { file: 'x.root', branch: 'Track.fBits', entry: 4 };
  // three fBits values: plain, referenced (+2 bytes of pidf), plain
  const src = Uint8Array.of(
    0xaa, // junk before
    0x03, 0x00, 0x00, 0x08,
    0x03, 0x00, 0x00, 0x18, 0x12, 0x34,
    0x01, 0x02, 0x03, 0x04,
    0xbb, // junk after
  );

  test('kIsReferenced (0x10 in the low byte) adds 2 bytes', () => {
    assert.equal(countBits(src, 1, 15, ctx), 3);
    const out = new Uint32Array(5);
    assert.equal(decodeBits(src, 1, 15, out, 1), 4);
    assert.deepEqual(Array.from(out), [0, 0x03000008, 0x03000018, 0x01020304, 0]);
    assert.equal(countBits(src, 1, 1, ctx), 0);
    assert.equal(countBits(src, 5, 11, ctx), 1);
  });

  test('values that do not fill the entry exactly are a CorruptDataError', () => {
    // a referenced value whose 2 extra bytes are missing
    assert.throws(() => countBits(src, 5, 9, ctx), (e: unknown) => e instanceof CorruptDataError && /fill/.test(e.message) && e.describe().includes('entry 4'));
    // a plain value cut short
    assert.throws(() => countBits(src, 1, 3, ctx), CorruptDataError);
  });
});

describe('decode.ts: stringLength', () => {
  test('one length byte, or 255 + a 4-byte big-endian length', () => {
    assert.deepEqual(stringLength(Uint8Array.of(9, 5), 1), [5, 2]);
    assert.deepEqual(stringLength(Uint8Array.of(0), 0), [0, 1]);
    assert.deepEqual(stringLength(Uint8Array.of(254), 0), [254, 1]);
    assert.deepEqual(stringLength(Uint8Array.of(255, 0x00, 0x01, 0x00, 0x00), 0), [65536, 5]);
    assert.deepEqual(stringLength(Uint8Array.of(1, 255, 0x80, 0x00, 0x00, 0x01), 1), [0x80000001, 6]);
  });
});

// ---------------------------------------------------------------------------------------------------
// columns.ts

/** Row r of a column as plain JS (for comparisons independent of the layout). */
function rowOf(c: ColumnData, r: number): unknown {
  switch (c.kind) {
    case 'primitive':
      return c.values[r];
    case 'fixed':
      return Array.from({ length: c.size }, (_, k) => rowOf(c.child, r * c.size + k));
    case 'list':
      return Array.from({ length: c.offsets[r + 1]! - c.offsets[r]! }, (_, k) => rowOf(c.child, c.offsets[r]! + k));
    case 'utf8':
      return new TextDecoder().decode(c.bytes.subarray(c.offsets[r]!, c.offsets[r + 1]!));
  }
}
const rowsOf = (c: ColumnData) => Array.from({ length: columnRows(c) }, (_, r) => rowOf(c, r));

function prim(dtype: DType, values: NumericArray): ColumnData {
  return { kind: 'primitive', dtype, values };
}

function sampleColumns(rows: number): Record<string, ColumnData> {
  const r = rng(rows + 11);
  const int = (n: number) => Math.floor(r() * n);
  const f64 = Float64Array.from({ length: rows }, () => r() * 100 - 50);
  f64[0] = Number.NaN;
  const i64 = BigInt64Array.from({ length: rows }, (_, i) => BigInt(i) * 2n ** 54n - 7n);
  const fixed23 = Int16Array.from({ length: rows * 6 }, (_, i) => i - 100);
  const outer = Array.from({ length: rows }, () => int(4));
  const outerOff = offsetsOf(outer);
  const inner = Array.from({ length: outerOff[rows]! }, () => int(3));
  const innerOff = offsetsOf(inner);
  const leaf = Int32Array.from({ length: innerOff[innerOff.length - 1]! }, (_, i) => i * 3 - 1);
  const strs = Array.from({ length: rows }, (_, i) => ['', 'µ', 'Jet_pt', '日本語', 'x'.repeat(i % 7)][i % 5]!);
  const jagFixed = Array.from({ length: rows }, () => int(3));
  const jfOff = offsetsOf(jagFixed);
  return {
    float64: prim('float64', f64),
    int64: prim('int64', i64),
    bool: prim('bool', Uint8Array.from({ length: rows }, (_, i) => i % 3 === 0 ? 1 : 0)),
    'fixed<2, fixed<3, int16>>': { kind: 'fixed', size: 2, child: { kind: 'fixed', size: 3, child: prim('int16', fixed23) } },
    'list<list<int32>>': { kind: 'list', offsets: outerOff, child: { kind: 'list', offsets: innerOff, child: prim('int32', leaf) } },
    'list<fixed<4, float32>>': {
      kind: 'list',
      offsets: jfOff,
      child: { kind: 'fixed', size: 4, child: prim('float32', Float32Array.from({ length: jfOff[rows]! * 4 }, (_, i) => i / 4)) },
    },
    utf8: utf8Column(strs),
  };
}

describe('columns.ts: sliceRows / concatColumns', () => {
  const rows = 23;
  const cols = sampleColumns(rows);

  for (const [name, col] of Object.entries(cols)) {
    test(`${name}: slices at every cut point concatenate back to the original`, () => {
      assert.equal(columnRows(col), rows);
      const want = rowsOf(col);
      for (const cuts of [[0, rows], [0, 1, rows], [0, 7, 8, 8, 20, rows], [0, 0, rows, rows], Array.from({ length: rows + 1 }, (_, i) => i)]) {
        const parts: ColumnData[] = [];
        for (let k = 0; k + 1 < cuts.length; k++) {
          const s = sliceRows(col, cuts[k]!, cuts[k + 1]!);
          assert.equal(columnRows(s), cuts[k + 1]! - cuts[k]!);
          assert.deepEqual(rowsOf(s), want.slice(cuts[k], cuts[k + 1]), `slice ${cuts[k]}..${cuts[k + 1]}`);
          parts.push(s);
        }
        const joined = concatColumns(parts);
        assert.deepEqual(rowsOf(joined), want, `cuts ${cuts.join(',')}`);
        // the structure is the original's (offsets from 0, no stray child rows)
        assert.deepEqual(joined, col, `layout after cuts ${cuts.join(',')}`);
      }
    });
  }

  test('sliced list/utf8 offsets start at 0; primitive slices are views', () => {
    const l = sliceRows(cols['list<list<int32>>']!, 5, 9) as Extract<ColumnData, { kind: 'list' }>;
    assert.equal(l.offsets[0], 0);
    assert.equal((l.child as Extract<ColumnData, { kind: 'list' }>).offsets[0], 0);
    const u = sliceRows(cols.utf8!, 3, 6) as Extract<ColumnData, { kind: 'utf8' }>;
    assert.equal(u.offsets[0], 0);
    assert.equal(u.bytes.length, u.offsets[3]);
    const p = sliceRows(cols.float64!, 2, 5) as Extract<ColumnData, { kind: 'primitive' }>;
    assert.equal(p.values.buffer, (cols.float64 as Extract<ColumnData, { kind: 'primitive' }>).values.buffer);
  });

  test('concatenating parts whose offsets do not start at 0 (raw views) rebases them', () => {
    const col = cols['list<list<int32>>'] as Extract<ColumnData, { kind: 'list' }>;
    // a hand-made view of rows 4..10 that keeps the original child and absolute offsets
    const raw: ColumnData = { kind: 'list', offsets: col.offsets.subarray(4, 12), child: col.child };
    const joined = concatColumns([sliceRows(col, 0, 4), raw, sliceRows(col, 11, rows)]);
    assert.deepEqual(rowsOf(joined), rowsOf(col));
    const s = cols.utf8 as Extract<ColumnData, { kind: 'utf8' }>;
    const rawS: ColumnData = { kind: 'utf8', offsets: s.offsets.subarray(4, 12), bytes: s.bytes };
    assert.deepEqual(rowsOf(concatColumns([sliceRows(s, 0, 4), rawS, sliceRows(s, 11, rows)])), rowsOf(s));
  });

  test('concat of nothing is an error; of one part is that part', () => {
    assert.throws(() => concatColumns([]), /nothing/);
    const c = cols.float64!;
    assert.equal(concatColumns([c]), c);
  });

  test('NaN payloads and int64 beyond 2^53 survive slice + concat bit for bit', () => {
    const bits = new BigUint64Array([0xfff8000000000123n, 0x7ff0000000000001n, 0x3ff0000000000000n]);
    const f = new Float64Array(bits.buffer);
    const c = prim('float64', f);
    const j = concatColumns([sliceRows(c, 0, 1), sliceRows(c, 1, 3)]) as Extract<ColumnData, { kind: 'primitive' }>;
    assert.deepEqual(Array.from(new BigUint64Array(j.values.buffer, j.values.byteOffset, 3)), Array.from(bits));
    const big = prim('uint64', new BigUint64Array([2n ** 64n - 1n, 2n ** 53n + 1n]));
    const jb = concatColumns([sliceRows(big, 1, 2), sliceRows(big, 0, 1)]) as Extract<ColumnData, { kind: 'primitive' }>;
    assert.deepEqual(Array.from(jb.values as BigUint64Array), [2n ** 53n + 1n, 2n ** 64n - 1n]);
  });
});
