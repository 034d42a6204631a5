import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { Figure, clipPolyline } from '../../src/evaluate/plot/figure.js';
import { BOLD, REGULAR, UNITS_PER_EM } from '../../src/evaluate/plot/glyphs.js';
import { svgToPng, svgToRaster, type Raster } from '../../src/evaluate/plot/png.js';
import { escapeXml, measure, outline, svgText } from '../../src/evaluate/plot/text.js';
import { formatDecade, formatLinearTicks, formatLogMinor, linearTicks, logTicks } from '../../src/evaluate/plot/ticks.js';
import { evaluationFigures, evaluationPlots } from '../../src/evaluate/plots.js';
import type { EvaluationPlotsInput, RocCurve } from '../../src/evaluate/types.js';

// ---------------------------------------------------------------------------------------------------
// helpers

/**
 * Checks that `xml` is well-formed (no regexes): one root element, every tag closed in order,
 * attribute values quoted, no stray '<' or unescaped '&' in text or attributes.
 */
function assertWellFormed(xml: string): void {
  const stack: string[] = [];
  let roots = 0;
  let i = 0;
  const isNameChar = (c: string): boolean =>
    (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c === '-' || c === '_' || c === ':' || c === '.';
  const checkEntities = (s: string, where: number): void => {
    for (let k = s.indexOf('&'); k >= 0; k = s.indexOf('&', k + 1)) {
      const semi = s.indexOf(';', k);
      const ent = semi > k ? s.slice(k + 1, semi) : '';
      const ok =
        ['lt', 'gt', 'amp', 'quot', 'apos'].includes(ent) ||
        (ent.startsWith('#') && ent.length > 1 && [...ent.slice(ent[1] === 'x' ? 2 : 1)].every((c) => isNameChar(c)));
      assert.ok(ok, `bad entity near offset ${where + k}: ${s.slice(k, k + 12)}`);
    }
  };
  while (i < xml.length) {
    const lt = xml.indexOf('<', i);
    const text = lt < 0 ? xml.slice(i) : xml.slice(i, lt);
    if (text.trim().length) {
      assert.ok(stack.length > 0, `text outside the root element at ${i}`);
      checkEntities(text, i);
    }
    if (lt < 0) break;
    if (xml.startsWith('<?', lt)) {
      const e = xml.indexOf('?>', lt);
      assert.ok(e > 0, 'unterminated processing instruction');
      i = e + 2;
      continue;
    }
    if (xml.startsWith('<!--', lt)) {
      const e = xml.indexOf('-->', lt);
      assert.ok(e > 0, 'unterminated comment');
      i = e + 3;
      continue;
    }
    let j = lt + 1;
    const closing = xml[j] === '/';
    if (closing) j++;
    let name = '';
    while (j < xml.length && isNameChar(xml[j] as string)) name += xml[j++];
    assert.ok(name.length > 0, `tag without a name at ${lt}: ${xml.slice(lt, lt + 20)}`);
    if (closing) {
      while (xml[j] === ' ' || xml[j] === '\n') j++;
      assert.equal(xml[j], '>', `malformed end tag </${name}`);
      assert.equal(stack.pop(), name, `</${name}> closes the wrong element`);
      i = j + 1;
      continue;
    }
    // attributes
    const seen = new Set<string>();
    for (;;) {
      while (xml[j] === ' ' || xml[j] === '\n' || xml[j] === '\t') j++;
      const c = xml[j];
      assert.ok(c !== undefined, `unterminated <${name}`);
      if (c === '>' || (c === '/' && xml[j + 1] === '>')) break;
      let attr = '';
      while (j < xml.length && isNameChar(xml[j] as string)) attr += xml[j++];
      assert.ok(attr.length > 0, `bad attribute in <${name} at ${j}: ${xml.slice(j, j + 20)}`);
      assert.ok(!seen.has(attr), `duplicate attribute ${attr} in <${name}>`);
      seen.add(attr);
      assert.equal(xml[j], '=', `attribute ${attr} without a value`);
      const q = xml[j + 1];
      assert.ok(q === '"' || q === "'", `attribute ${attr} not quoted`);
      const end = xml.indexOf(q as string, j + 2);
      assert.ok(end > 0, `unterminated attribute ${attr}`);
      const value = xml.slice(j + 2, end);
      assert.ok(!value.includes('<'), `'<' in attribute ${attr}`);
      checkEntities(value, j + 2);
      j = end + 1;
    }
    if (xml[j] === '/') {
      if (stack.length === 0) roots++;
      i = j + 2;
    } else {
      if (stack.length === 0) roots++;
      stack.push(name);
      i = j + 1;
    }
  }
  assert.deepEqual(stack, [], 'unclosed elements');
  assert.equal(roots, 1, 'exactly one root element');
}

/** Width and height from a PNG's IHDR chunk (after checking the signature). */
function pngSize(png: Uint8Array): { width: number; height: number } {
  assert.deepEqual([...png.subarray(0, 8)], [137, 80, 78, 71, 13, 10, 26, 10], 'PNG signature');
  const dv = new DataView(png.buffer, png.byteOffset, png.byteLength);
  assert.equal(String.fromCharCode(...png.subarray(12, 16)), 'IHDR');
  return { width: dv.getUint32(16), height: dv.getUint32(20) };
}

function pixel(r: Raster, x: number, y: number): [number, number, number, number] {
  const o = (Math.round(y) * r.width + Math.round(x)) * 4;
  return [r.pixels[o] as number, r.pixels[o + 1] as number, r.pixels[o + 2] as number, r.pixels[o + 3] as number];
}

function isWhite([r, g, b]: readonly number[]): boolean {
  return (r as number) > 250 && (g as number) > 250 && (b as number) > 250;
}

/** Pixels in a rectangle that are not white. */
function inkIn(r: Raster, x0: number, y0: number, x1: number, y1: number): number {
  let n = 0;
  for (let y = Math.max(0, y0); y < Math.min(r.height, y1); y++) {
    for (let x = Math.max(0, x0); x < Math.min(r.width, x1); x++) if (!isWhite(pixel(r, x, y))) n++;
  }
  return n;
}

/** A small but complete evaluation: 3 classes, ROC curves, history, confusion, score histograms. */
function syntheticInput(): EvaluationPlotsInput {
  const classes = ['QCD', 'tt', 'WJets'];
  const roc: RocCurve[] = classes.map((cls, c) => {
    const n = 200;
    const fpr = new Float64Array(n + 1);
    const tpr = new Float64Array(n + 1);
    const thresholds = new Float64Array(n + 1);
    thresholds[0] = Infinity;
    for (let i = 1; i <= n; i++) {
      const t = i / n;
      fpr[i] = t ** (4 + c); // convex: a good classifier
      tpr[i] = t ** 0.1;
      thresholds[i] = 1 - t;
    }
    return { cls, fpr, tpr, thresholds, auc: 0.995 - 0.001 * c, positives: 1000, negatives: 2000 };
  });
  const bins = 20;
  const edges = Float64Array.from({ length: bins + 1 }, (_, b) => b / bins);
  const counts = classes.map((_, k) =>
    classes.map((__, j) => Float64Array.from({ length: bins }, (___, b) => (j === k ? 1 + b * b : (bins - b) ** 2) + (b % 3))),
  );
  return {
    classes,
    title: 'unit <test> & model',
    roc,
    confusion: [
      [9312, 400, 288],
      [120, 9700, 180],
      [300, 200, 9500],
    ],
    scores: { edges, counts },
    history: Array.from({ length: 20 }, (_, e) => ({
      epoch: e + 1,
      loss: 0.5 * Math.exp(-e / 4) + 0.1,
      accuracy: 0.97 - 0.1 * Math.exp(-e / 4),
      val_loss: 0.45 * Math.exp(-e / 4) + 0.12,
      val_accuracy: 0.96 - 0.1 * Math.exp(-e / 4),
    })),
  };
}

// ---------------------------------------------------------------------------------------------------

describe('ticks', () => {
  test('linear ticks are nice numbers without float noise', () => {
    assert.deepEqual(linearTicks(0, 1, 9), [0, 0.2, 0.4, 0.6, 0.8, 1]);
    assert.deepEqual(linearTicks(0.3, 1.7, 7), [0.4, 0.6, 0.8, 1, 1.2, 1.4, 1.6]);
    assert.deepEqual(linearTicks(0, 1, 4), [0, 0.25, 0.5, 0.75, 1]);
    assert.deepEqual(linearTicks(-1, 1, 4), [-1, -0.5, 0, 0.5, 1]);
    assert.deepEqual(linearTicks(0.1, 0.35, 5), [0.1, 0.15, 0.2, 0.25, 0.3, 0.35]);
    assert.deepEqual(linearTicks(0, 1000, 5), [0, 200, 400, 600, 800, 1000]);
    assert.deepEqual(linearTicks(0.0001, 0.0005, 4), [0.0001, 0.0002, 0.0003, 0.0004, 0.0005]);
    assert.deepEqual(linearTicks(0.0001, 0.00052, 4), [0.0002, 0.0004]);
  });

  test('integer ticks (epochs)', () => {
    assert.deepEqual(linearTicks(0.05, 20.95, 9, true), [5, 10, 15, 20]);
    assert.deepEqual(linearTicks(0.9, 3.1, 9, true), [1, 2, 3]);
    assert.deepEqual(linearTicks(0.9, 1.1, 9, true), [1]);
  });

  test('degenerate linear ranges', () => {
    assert.deepEqual(linearTicks(2, 2, 5), [2]);
    assert.deepEqual(linearTicks(Number.NaN, 1, 5), []);
    assert.deepEqual(linearTicks(1, 0, 5), [0, 0.2, 0.4, 0.6, 0.8, 1]);
  });

  test('linear labels share the decimals of the step and use a real minus sign', () => {
    assert.deepEqual(formatLinearTicks([0, 0.2, 0.4]), ['0.0', '0.2', '0.4']);
    assert.deepEqual(formatLinearTicks([0, 0.25, 0.5]), ['0.00', '0.25', '0.50']);
    assert.deepEqual(formatLinearTicks([-1, 0, 1]), ['\u22121', '0', '1']);
    assert.deepEqual(formatLinearTicks([5, 10, 15]), ['5', '10', '15']);
    assert.deepEqual(formatLinearTicks(linearTicks(0.25, 0.35, 5)), ['0.26', '0.28', '0.30', '0.32', '0.34']);
    assert.deepEqual(formatLinearTicks([0, 2e6, 4e6]), [
      '0',
      [{ text: '2\u00d710' }, { text: '6', sup: true }],
      [{ text: '4\u00d710' }, { text: '6', sup: true }],
    ]);
    assert.deepEqual(formatLinearTicks([1e-5, 1.5e-5]), [
      [{ text: '10' }, { text: '\u22125', sup: true }],
      [{ text: '1.5\u00d710' }, { text: '\u22125', sup: true }],
    ]);
    assert.deepEqual(formatLogMinor(0.2), '0.2');
    assert.deepEqual(formatLogMinor(5e-5), [{ text: '5\u00d710' }, { text: '\u22125', sup: true }]);
  });

  test('log ticks: decades and 2…9 minors', () => {
    const t = logTicks(1e-4, 1);
    assert.deepEqual(t.major, [1e-4, 1e-3, 1e-2, 1e-1, 1]);
    assert.equal(t.minor.length, 4 * 8);
    assert.equal(t.minor[0], 2e-4);
    assert.equal(t.minor[t.minor.length - 1], 0.9);
    assert.ok(t.minor.every((v) => v > 1e-4 && v < 1));
  });

  test('log ticks: partial decades, strides, less than a decade', () => {
    const a = logTicks(3e-5, 1.15);
    assert.deepEqual(a.major, [1e-4, 1e-3, 1e-2, 1e-1, 1]);
    assert.ok(a.minor.includes(3e-5) && a.minor.includes(9e-5) && !a.minor.includes(2e-5));
    const b = logTicks(1e-12, 1, 5);
    assert.deepEqual(b.major, [1e-12, 1e-9, 1e-6, 1e-3, 1]);
    assert.ok(b.minor.includes(1e-10) && !b.minor.includes(2e-10));
    const c = logTicks(0.2, 0.5);
    assert.deepEqual(c.major, []);
    assert.deepEqual(c.minor, [0.2, 0.3, 0.4, 0.5]);
    assert.deepEqual(logTicks(0, 1), { major: [], minor: [] });
  });

  test('decade labels are 10 with a superscript exponent', () => {
    assert.deepEqual(formatDecade(1e-3), [{ text: '10' }, { text: '\u22123', sup: true }]);
    assert.deepEqual(formatDecade(1), [{ text: '10' }, { text: '0', sup: true }]);
    assert.deepEqual(formatDecade(100), [{ text: '10' }, { text: '2', sup: true }]);
  });
});

describe('text', () => {
  test('width is the sum of DejaVu Sans advances (and kerning)', () => {
    // DejaVu Sans advances in font units (units per em 2048): A 1401, U 1499, C 1430; no AU/UC kerning
    assert.equal(UNITS_PER_EM, 2048);
    assert.equal(REGULAR.glyphs['A']?.[0], 1401);
    assert.equal(REGULAR.glyphs['U']?.[0], 1499);
    assert.equal(REGULAR.glyphs['C']?.[0], 1430);
    assert.ok(Math.abs(measure('AUC', 12) - ((1401 + 1499 + 1430) * 12) / 2048) < 1e-9);
    // "AV" is kerned by the font's kern table
    const kern = REGULAR.kern.split('\u0001').find((e) => e.startsWith('AV'));
    assert.ok(kern, 'AV kerning pair');
    const av = ((1401 + (REGULAR.glyphs['V']?.[0] ?? 0) + Number(kern.slice(2))) * 10) / 2048;
    assert.ok(Math.abs(measure('AV', 10) - av) < 1e-9);
    assert.ok(measure('AUC', 12, true) > measure('AUC', 12), 'bold is wider');
    assert.equal(measure('', 12), 0);
    // superscripts are smaller
    assert.ok(measure([{ text: '10' }, { text: '\u22123', sup: true }], 12) < measure('10\u22123', 12));
  });

  test('every embedded glyph has a path or is blank, in both faces', () => {
    for (const face of [REGULAR, BOLD]) {
      for (const ch of ['a', 'Z', '0', '(', '\u2212', 'ε', '×', 'μ', 'Δ', '±', '→']) {
        const g = face.glyphs[ch];
        assert.ok(g && g[0] > 0 && g[1].startsWith('M'), `glyph ${ch}`);
      }
      assert.equal(face.glyphs[' ']?.[1], '');
    }
  });

  test('unknown characters do not crash: accents decompose, others fall back', () => {
    assert.ok(Math.abs(measure('é', 12) - measure('e', 12)) < 1e-9, 'combining accent has no advance');
    assert.ok(measure('\u4e2d', 12) > 0);
    assert.ok(outline('tt\u0304 \u4e2d', 0, 0, 12).includes('<path'));
  });

  test('XML escaping', () => {
    assert.equal(escapeXml(`<a & "b">'`), '&lt;a &amp; &quot;b&quot;&gt;&apos;');
    assert.equal(escapeXml('plain'), 'plain');
    const t = svgText('x < y & z', 10, 20, 12, 'middle', false, -90);
    assert.ok(t.includes('x &lt; y &amp; z'));
    assertWellFormed(t);
  });

  test('outlines are placed by anchor and rotation', () => {
    const start = outline('AUC', 100, 50, 12, 'start');
    const end = outline('AUC', 100, 50, 12, 'end');
    assert.ok(start.includes('translate(100 50) translate(0 0)'));
    assert.ok(end.includes(`translate(${Math.round(-measure('AUC', 12) * 100) / 100} 0)`));
    assert.ok(outline('y', 10, 10, 12, 'middle', false, -90).includes('rotate(-90)'));
    assert.equal(outline('   ', 0, 0, 12), '');
  });
});

describe('figure', () => {
  test('clipPolyline keeps the parts inside the rectangle', () => {
    const r = { x: 0, y: 0, w: 10, h: 10 };
    assert.deepEqual(clipPolyline([-5, 5, 15, 5], r), [[0, 5, 10, 5]]);
    assert.deepEqual(clipPolyline([2, 2, 8, 8], r), [[2, 2, 8, 8]]);
    assert.deepEqual(clipPolyline([-5, -5, -1, -1], r), []);
    // out and back in: two runs
    assert.deepEqual(clipPolyline([5, 5, 5, 20, 8, 5], r), [
      [5, 5, 5, 10],
      [7, 10, 8, 5],
    ]);
  });

  test('the well-formedness checker rejects broken XML', () => {
    for (const bad of ['<a><b></a>', '<a x=1/>', '<a>x & y</a>', '<a/><b/>', '<a x="<"/>', '<a>', '<a x="1" x="2"/>']) {
      assert.throws(() => assertWellFormed(bad), assert.AssertionError, bad);
    }
    assertWellFormed('<?xml version="1.0"?><a x="&amp;"><!-- c --><b/>t &lt; u</a>');
  });

  test('SVG is well-formed, keeps real text, escapes titles', () => {
    const fig = new Figure({ title: 'a <b> & "c"' });
    const p = fig.panel(0, 0, { title: 'ε < 1', x: { label: 'x & y' }, y: { label: 'Efficiency', scale: 'log' } });
    p.line([0.1, 0.5, 1], [1e-3, 1e-2, 1], { label: 'curve <1>' });
    p.line([0, 1], [1e-3, 1], { label: 'Random', dash: [6, 4] });
    p.legend({ loc: 'lower right' });
    const svg = fig.toSvg();
    assertWellFormed(svg);
    assert.ok(svg.includes('<text') && svg.includes('font-family="DejaVu Sans'));
    assert.ok(svg.includes('a &lt;b&gt; &amp; &quot;c&quot;'));
    assert.ok(svg.includes('curve &lt;1&gt;'));
    assert.ok(svg.includes('clip-path="url(#'));
    const outlined = fig.toOutlinedSvg();
    assertWellFormed(outlined);
    assert.ok(!outlined.includes('<text'), 'no text elements in the outlined SVG');
    assert.ok(!outlined.includes('font-family'));
  });

  test('PNG: signature, 2× size, data drawn inside the plot area, text without fonts', async () => {
    const fig = new Figure({ panelWidth: 400, panelHeight: 300, title: 'Title' });
    const p = fig.panel(0, 0, { x: { domain: [0, 1] }, y: { domain: [0, 1] } });
    p.line([0, 1], [0.5, 0.5], { color: '#ff0000', width: 4 });
    const png = await fig.toPng();
    assert.deepEqual(pngSize(png), { width: 2 * fig.width, height: 2 * fig.height });
    assert.equal(fig.width, 400);
    const r = await svgToRaster(fig.toOutlinedSvg(), 1);
    assert.equal(r.width, 400);
    // the red line crosses the middle column of the figure, inside the frame
    let red = 0;
    for (let y = 0; y < r.height; y++) {
      const [R, G, B] = pixel(r, 220, y);
      if (R > 200 && G < 60 && B < 60) red++;
    }
    assert.ok(red >= 3, `red line found (${red} px)`);
    // corners are white (white background), the title (glyph outlines, no font) has ink
    assert.ok(isWhite(pixel(r, 1, 1)) && isWhite(pixel(r, r.width - 2, r.height - 2)));
    assert.ok(inkIn(r, 150, 0, 250, 30) > 20, 'title drawn');
  });

  test('series are clipped to the plot area', async () => {
    const fig = new Figure({ panelWidth: 300, panelHeight: 300 });
    const p = fig.panel(0, 0, { x: { domain: [0, 1] }, y: { domain: [0, 1] } });
    p.line([-10, 10], [-10, 10], { color: '#00ff00', width: 6 });
    const r = await svgToRaster(fig.toOutlinedSvg(), 1);
    for (const [x, y] of [
      [2, 298],
      [298, 2],
    ] as const) {
      const [R, G, B] = pixel(r, x, y);
      assert.ok(!(G > 200 && R < 80 && B < 80), `no green outside the frame at (${x}, ${y})`);
    }
  });

  test('NaN, infinities, non-positive values on log axes and empty series do not crash', async () => {
    const fig = new Figure({ rows: 2, cols: 2 });
    const a = fig.panel(0, 0, { y: { scale: 'log' } });
    a.line([0, 1, 2, 3, 4], [Number.NaN, 0, -1, Infinity, 1e-3], { label: 'bad' });
    a.line([], [], { label: 'empty' });
    a.legend();
    const b = fig.panel(0, 1, { x: { domain: [Number.NaN, 1] } });
    b.line([Number.NaN], [Number.NaN]);
    b.step([0, 1, 2], [Number.NaN, 3]);
    b.step([], []);
    fig.panel(1, 0, { y: { scale: 'log', domain: [0, 1] } }).step([0, 0.5, 1], [0, 0], { fill: true, label: 'zeros' }).legend();
    fig.panel(1, 1).heatmap(
      [
        [Number.NaN, 1],
        [2, Infinity],
      ],
      { xCategories: ['a', 'b'], yCategories: ['a', 'b'], annotations: [[['x'], []], [[], ['y', 'z']]] },
    );
    const svg = fig.toSvg();
    assertWellFormed(svg);
    assert.ok(!svg.includes('NaN') && !svg.includes('Infinity'), 'no NaN/Infinity written');
    const outlined = fig.toOutlinedSvg();
    assert.ok(!outlined.includes('NaN') && !outlined.includes('Infinity'));
    pngSize(await svgToPng(outlined, 1));
    // an empty figure renders too
    const empty = new Figure();
    assertWellFormed(empty.toSvg());
    pngSize(await empty.toPng());
  });

  test('heatmap: cell text contrasts with the cell color, colorbar and categories present', async () => {
    const fig = new Figure({ panelWidth: 500, panelHeight: 420 });
    fig.panel(0, 0, { x: { label: 'Predicted' }, y: { label: 'True' } }).heatmap(
      [
        [1, 0],
        [0, 1],
      ],
      {
        xCategories: ['signal', 'background'],
        yCategories: ['signal', 'background'],
        colormap: 'Blues',
        domain: [0, 1],
        annotations: [
          [['1.00'], ['0.00']],
          [['0.00'], ['1.00']],
        ],
        colorbarLabel: 'Fraction',
      },
    );
    const svg = fig.toSvg();
    assertWellFormed(svg);
    assert.ok(svg.includes('<linearGradient'));
    assert.ok(svg.includes('font-weight="bold" fill="#ffffff">1.00</text>'), 'white text on dark cells');
    assert.ok(svg.includes('font-weight="bold" fill="#000000">0.00</text>'), 'black text on light cells');
    assert.ok(!svg.includes('fill="#ffffff">0.00'));
    assert.ok(svg.includes('>background</text>') && svg.includes('>Fraction</text>'));
  });
});

describe('evaluationPlots', () => {
  test('all five figures from a complete input', async () => {
    const input = syntheticInput();
    const t0 = performance.now();
    const plots = await evaluationPlots(input);
    const ms = performance.now() - t0;
    assert.deepEqual(
      plots.map((p) => p.name),
      ['roc', 'roc-log', 'history', 'confusion', 'scores'],
    );
    for (const p of plots) {
      assertWellFormed(p.svg);
      const { width, height } = pngSize(p.png);
      assert.ok(width >= 800 && height >= 600, `${p.name} is rendered at 2×: ${width}×${height}`);
      assert.ok(p.svg.includes('unit &lt;test&gt; &amp; model'), `${p.name} has the model title`);
    }
    const svg = (name: string): string => plots.find((p) => p.name === name)?.svg ?? '';
    assert.ok(svg('roc').includes('QCD (AUC = 0.9950)') && svg('roc').includes('Random'));
    assert.ok(svg('roc-log').includes('WJets (AUC = 0.9930)'));
    assert.ok(svg('history').includes('>Validation</text>') && svg('history').includes('>Epoch</text>'));
    assert.ok(svg('history').includes('>10</text>') && !svg('history').includes('>2.5</text>'), 'integer epoch ticks');
    assert.ok(svg('roc-log').includes('>10<tspan'), 'decade labels on the log axis');
    assert.ok(svg('confusion').includes('>0.93</text>') && svg('confusion').includes('(9,312)'));
    assert.ok(svg('scores').includes('P(QCD)') && svg('scores').includes('>True class</text>'));
    assert.ok(ms < 10000, `rendered in ${ms.toFixed(0)} ms`);
  });

  test('figures whose data is missing are skipped', () => {
    const input = syntheticInput();
    const names = (i: EvaluationPlotsInput): string[] => evaluationFigures(i).map((f) => f.name);
    assert.deepEqual(names({ ...input, history: [] }), ['roc', 'roc-log', 'confusion', 'scores']);
    assert.deepEqual(names({ ...input, roc: input.roc.map(() => undefined) }), ['history', 'confusion', 'scores']);
    assert.deepEqual(names({ ...input, confusion: [] }), ['roc', 'roc-log', 'history', 'scores']);
    assert.deepEqual(names({ ...input, confusion: [[0, 0, 0], [0, 0, 0], [0, 0, 0]] }), ['roc', 'roc-log', 'history', 'scores']);
    assert.deepEqual(names({ ...input, scores: { edges: new Float64Array(0), counts: [] } }), ['roc', 'roc-log', 'history', 'confusion']);
    assert.deepEqual(
      names({ classes: [], title: 't', roc: [], confusion: [], scores: { edges: new Float64Array(0), counts: [] }, history: [] }),
      [],
    );
  });

  test('one undefined ROC curve, an all-zero row and NaN history values still render', async () => {
    const input = syntheticInput();
    const plots = await evaluationPlots({
      ...input,
      roc: [input.roc[0], undefined, input.roc[2]],
      confusion: [
        [10, 2, 1],
        [0, 0, 0],
        [1, 2, 10],
      ],
      history: [
        { epoch: 1, loss: Number.NaN, accuracy: 0.5 },
        { epoch: 2, loss: 0.4, accuracy: Number.NaN, val_loss: 0.5 },
      ],
    });
    assert.deepEqual(
      plots.map((p) => p.name),
      ['roc', 'roc-log', 'history', 'confusion', 'scores'],
    );
    for (const p of plots) {
      assertWellFormed(p.svg);
      assert.ok(!p.svg.includes('NaN'), `${p.name}: no NaN in the SVG`);
    }
    assert.ok(!(plots[0]?.svg ?? '').includes('tt (AUC'), 'no curve for the undefined class');
  });
});
