'use strict';
// hep-ml uses only jsroot's I/O modules (jsroot/io, jsroot/tree), which never load jsroot's
// graphics stack (canvas, jsdom, three, mathjax, resvg). ZSTD is handed to jsroot by hep-ml
// itself (src/root/jsroot.ts), so @oneidentity/zstd-js is not loaded either.
// If anything reaches for one of these, it fails with a clear message instead of a missing binary.
function unavailable() {
  throw new Error('this jsroot dependency is replaced by a stub in hep-ml (only jsroot I/O is used); see docs/decisions.md');
}
module.exports = new Proxy({}, { get: (_t, k) => (k === '__esModule' ? false : k === 'then' ? undefined : unavailable) });
