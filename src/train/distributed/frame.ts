/**
 * Binary frames for hep-ml's distributed training: a small JSON header (control data only) plus raw byte
 * parts (tensors travel as their Float32Array bytes, never as JSON).
 *
 *   u32 magic 0x464c4d48 ('HMLF' little-endian) | u32 header bytes H | u32 part count P | P × u32 part bytes
 *   | header (UTF-8 JSON) | parts, each starting on an 8-byte boundary of the frame
 *
 * All integers little-endian. A frame is at most 2 GiB − 1.
 */
export const FRAME_MAGIC = 0x464c4d48;
const MAX_FRAME = 0x7fffffff;

/** What a frame head may be when sent: any JSON-able object with its message type `t`. */
export type FrameHead = { readonly t: string };

export interface Frame {
  /** The message (control data): its `t` names the message type. */
  head: { t: string; [k: string]: unknown };
  /** Binary payloads, 8-byte aligned (safe to view as Float32Array/Float64Array). */
  parts: Uint8Array[];
}

const align8 = (n: number) => Math.ceil(n / 8) * 8; // not bitwise: sizes may exceed 2³¹ (refused later)

/** Encodes a frame as a list of buffers (the parts are not copied). */
export function encodeFrame<H extends FrameHead>(head: H, parts: ArrayBufferView[] = []): Buffer[] {
  const h = Buffer.from(JSON.stringify(head), 'utf8');
  const pre = 12 + 4 * parts.length;
  let off = align8(pre + h.length);
  const lead = Buffer.alloc(off);
  lead.writeUInt32LE(FRAME_MAGIC, 0);
  lead.writeUInt32LE(h.length, 4);
  lead.writeUInt32LE(parts.length, 8);
  parts.forEach((p, i) => lead.writeUInt32LE(p.byteLength, 12 + 4 * i));
  h.copy(lead, pre);
  const out: Buffer[] = [lead];
  for (const p of parts) {
    const b = Buffer.from(p.buffer, p.byteOffset, p.byteLength);
    out.push(b);
    off += p.byteLength;
    const pad = align8(off) - off;
    if (pad) out.push(Buffer.alloc(pad));
    off += pad;
  }
  if (off > MAX_FRAME) throw new RangeError(`frame of ${off} bytes is too large`);
  return out;
}

/** Reassembles frames from a byte stream (chunks as they arrive). */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private have = 0;
  /** Parsed lead of the frame being read: total bytes, or -1 when the lead is not complete. */
  private need = -1;
  private lead?: { headLen: number; sizes: number[]; start: number };

  /** Feeds bytes; returns the frames they complete. Throws on bytes that are not frames. */
  push(chunk: Buffer): Frame[] {
    this.chunks.push(chunk);
    this.have += chunk.length;
    const frames: Frame[] = [];
    for (;;) {
      if (this.need < 0) {
        if (this.have < 12) break;
        const b = this.peek(12);
        if (b.readUInt32LE(0) !== FRAME_MAGIC) throw new Error('not a hep-ml frame (bad magic): is the peer a hep-ml train process of the same version?');
        const headLen = b.readUInt32LE(4);
        const nparts = b.readUInt32LE(8);
        if (nparts > 1024) throw new Error(`frame with ${nparts} parts`);
        const pre = 12 + 4 * nparts;
        if (this.have < pre) break;
        const p = this.peek(pre);
        const sizes: number[] = [];
        for (let i = 0; i < nparts; i++) sizes.push(p.readUInt32LE(12 + 4 * i));
        let total = align8(pre + headLen);
        for (const s of sizes) total = align8(total + s);
        if (total > MAX_FRAME) throw new Error(`frame of ${total} bytes`);
        this.need = total;
        this.lead = { headLen, sizes, start: pre };
      }
      if (this.have < this.need) break;
      const all = this.take(this.need);
      const { headLen, sizes, start } = this.lead!;
      const head = JSON.parse(all.toString('utf8', start, start + headLen)) as Frame['head'];
      let off = align8(start + headLen);
      const parts: Uint8Array[] = [];
      for (const s of sizes) {
        // a view when 8-byte aligned (large frames: one concatenation, no second copy), else an aligned copy
        if ((all.byteOffset + off) % 8 === 0) {
          parts.push(new Uint8Array(all.buffer, all.byteOffset + off, s));
        } else {
          const u = new Uint8Array(s);
          all.copy(u, 0, off, off + s);
          parts.push(u);
        }
        off = align8(off + s);
      }
      frames.push({ head, parts });
      this.need = -1;
      this.lead = undefined;
    }
    return frames;
  }

  /** Bytes held for an incomplete frame. */
  get pending(): number {
    return this.have;
  }

  private peek(n: number): Buffer {
    if (this.chunks[0]!.length >= n) return this.chunks[0]!;
    const b = Buffer.concat(this.chunks);
    this.chunks = [b];
    return b;
  }

  private take(n: number): Buffer {
    const b = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
    const rest = b.length > n ? b.subarray(n) : undefined;
    this.chunks = rest ? [rest] : [];
    this.have -= n;
    return b.subarray(0, n);
  }
}

/** A Float32Array view of a frame part (parts are aligned copies). */
export function f32(part: Uint8Array | undefined): Float32Array {
  if (!part) throw new Error('frame: missing binary part');
  if (part.byteLength % 4) throw new Error(`frame: a float32 part of ${part.byteLength} bytes`);
  return new Float32Array(part.buffer, part.byteOffset, part.byteLength / 4);
}
