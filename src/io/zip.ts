/**
 * A minimal zip reader, pure over a Uint8Array: enough for the archives `torch.save` writes (and the same files
 * re-zipped by other tools). It reads the central directory (never scanning local headers, which torch writes
 * with zero sizes and a trailing data descriptor), entries STORED or DEFLATEd (through node:zlib), and ZIP64
 * (the end-of-central-directory-64 record and locator, and the ZIP64 extra field of each entry). Every entry's
 * CRC-32 is checked when it is read, so a corrupted checkpoint fails instead of loading garbage weights.
 *
 * Left out: encryption, other compression methods (bzip2, lzma, zstd, ...), multi-disk archives, and writing.
 * Names are decoded as UTF-8 whatever bit 11 says (torch writes ASCII names). Every failure is a ZipError whose
 * message says what is wrong.
 */
import * as zlib from 'node:zlib';

export class ZipError extends Error {
  override name = 'ZipError';
}

export interface ZipEntry {
  name: string;
  /** 0 = STORED, 8 = DEFLATE */
  method: number;
  compressedSize: number;
  size: number;
  crc32: number;
  /** where the local file header starts */
  localHeaderOffset: number;
}

const SIG_LOCAL = 0x04034b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_EOCD = 0x06054b50;
const SIG_EOCD64 = 0x06064b50;
const SIG_EOCD64_LOCATOR = 0x07064b50;
const EOCD_SIZE = 22;
const LOCATOR_SIZE = 20;
const EOCD64_SIZE = 56;
const MAX_COMMENT = 0xffff;
const U16_MAX = 0xffff;
const U32_MAX = 0xffffffff;

function fail(message: string): never {
  throw new ZipError(message);
}

/** Little-endian reads with bounds checks that report a ZipError rather than a RangeError. */
class Reader {
  readonly view: DataView;
  constructor(readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  check(at: number, n: number, what: string): void {
    if (at < 0 || at + n > this.bytes.length) {
      fail(`${what} at byte ${at} runs past the end of the file (${this.bytes.length} bytes)`);
    }
  }
  u16(at: number): number { return this.view.getUint16(at, true); }
  u32(at: number): number { return this.view.getUint32(at, true); }
  /** A u64 that must fit a JS number exactly (2^53); larger values cannot be offsets into a file we hold. */
  u64(at: number, what: string): number {
    const v = this.view.getBigUint64(at, true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) fail(`${what} ${v} is too large`);
    return Number(v);
  }
}

const utf8 = new TextDecoder('utf-8');

/**
 * The end-of-central-directory record is the last 22 bytes plus a comment of up to 64 KiB, so it is searched for
 * backwards; a candidate counts only if its comment length reaches exactly the end of the file (a signature
 * inside the comment or inside data would not).
 */
function findEocd(r: Reader): number {
  const n = r.bytes.length;
  if (n < EOCD_SIZE) fail(`file is ${n} bytes, too short to be a zip archive (the end record alone is 22)`);
  const stop = Math.max(0, n - EOCD_SIZE - MAX_COMMENT);
  for (let at = n - EOCD_SIZE; at >= stop; at--) {
    if (r.u32(at) === SIG_EOCD && at + EOCD_SIZE + r.u16(at + 20) === n) return at;
  }
  fail('no end-of-central-directory record: not a zip archive, or truncated');
}

/** The central directory: where it starts, its size, and how many entries it has (ZIP64 aware). */
function centralDirectory(r: Reader): { offset: number; size: number; count: number } {
  const eocd = findEocd(r);
  if (r.u16(eocd + 4) !== 0 || r.u16(eocd + 6) !== 0) fail('multi-disk zip archives are not supported');
  let count = r.u16(eocd + 10);
  let size = r.u32(eocd + 12);
  let offset = r.u32(eocd + 16);
  const loc = eocd - LOCATOR_SIZE;
  if (loc >= 0 && r.u32(loc) === SIG_EOCD64_LOCATOR) {
    const at = r.u64(loc + 8, 'ZIP64 end record offset');
    r.check(at, EOCD64_SIZE, 'ZIP64 end-of-central-directory record');
    if (r.u32(at) !== SIG_EOCD64) fail(`ZIP64 locator points at byte ${at}, which holds no ZIP64 end record`);
    if (r.u32(at + 16) !== 0 || r.u32(at + 20) !== 0) fail('multi-disk zip archives are not supported');
    count = r.u64(at + 32, 'ZIP64 entry count');
    size = r.u64(at + 40, 'ZIP64 central directory size');
    offset = r.u64(at + 48, 'ZIP64 central directory offset');
  } else if (count === U16_MAX || size === U32_MAX || offset === U32_MAX) {
    fail('the end record says ZIP64, but there is no ZIP64 locator before it');
  }
  r.check(offset, size, 'central directory');
  return { offset, size, count };
}

/**
 * The entries of the archive in central-directory order. Sizes and offsets that are 0xFFFFFFFF in the fixed
 * fields are read from the ZIP64 extra field (id 1), which holds only the fields that overflowed, in the order
 * size, compressed size, local header offset. Duplicate names are refused: two readers could pick different ones.
 */
export function readZipEntries(bytes: Uint8Array): ZipEntry[] {
  if (!(bytes instanceof Uint8Array)) fail('input is not a Uint8Array');
  const r = new Reader(bytes);
  const cd = centralDirectory(r);
  const entries: ZipEntry[] = [];
  const seen = new Set<string>();
  let at = cd.offset;
  const end = cd.offset + cd.size;
  for (let i = 0; i < cd.count; i++) {
    if (at + 46 > end) fail(`central directory ends after ${i} of ${cd.count} entries`);
    if (r.u32(at) !== SIG_CENTRAL) fail(`central directory entry ${i} at byte ${at} has a bad signature`);
    const flags = r.u16(at + 8);
    const method = r.u16(at + 10);
    const crc32 = r.u32(at + 16);
    let compressedSize = r.u32(at + 20);
    let size = r.u32(at + 24);
    const nameLen = r.u16(at + 28);
    const extraLen = r.u16(at + 30);
    const commentLen = r.u16(at + 32);
    let localHeaderOffset = r.u32(at + 42);
    const next = at + 46 + nameLen + extraLen + commentLen;
    if (next > end) fail(`central directory entry ${i} runs past the end of the central directory`);
    const name = utf8.decode(bytes.subarray(at + 46, at + 46 + nameLen));
    const what = `zip entry ${JSON.stringify(name)}`;

    if (size === U32_MAX || compressedSize === U32_MAX || localHeaderOffset === U32_MAX) {
      const extra = r.bytes.subarray(at + 46 + nameLen, at + 46 + nameLen + extraLen);
      const z = zip64Extra(extra, what);
      let k = 0;
      const take = (field: string): number => {
        if (k + 8 > z.length) fail(`${what}: ZIP64 extra field is too short for the ${field}`);
        const v = new Reader(z).u64(k, `${what}: ZIP64 ${field}`);
        k += 8;
        return v;
      };
      if (size === U32_MAX) size = take('size');
      if (compressedSize === U32_MAX) compressedSize = take('compressed size');
      if (localHeaderOffset === U32_MAX) localHeaderOffset = take('local header offset');
    }
    if (flags & 1) fail(`${what} is encrypted`);
    if (method !== 0 && method !== 8) fail(`${what} uses compression method ${method} (only STORED and DEFLATE are supported)`);
    if (method === 0 && size !== compressedSize) {
      fail(`${what} is STORED but its size ${size} differs from its compressed size ${compressedSize}`);
    }
    if (seen.has(name)) fail(`${what} appears twice in the archive`);
    seen.add(name);
    entries.push({ name, method, compressedSize, size, crc32, localHeaderOffset });
    at = next;
  }
  return entries;
}

/** The payload of the ZIP64 extra field (header id 0x0001) among an entry's extra fields. */
function zip64Extra(extra: Uint8Array, what: string): Uint8Array {
  const r = new Reader(extra);
  let at = 0;
  while (at + 4 <= extra.length) {
    const id = r.u16(at);
    const len = r.u16(at + 2);
    if (at + 4 + len > extra.length) break;
    if (id === 1) return extra.subarray(at + 4, at + 4 + len);
    at += 4 + len;
  }
  fail(`${what} has sizes or offset marked ZIP64 (0xFFFFFFFF) but no ZIP64 extra field`);
}

/**
 * The uncompressed bytes of an entry. STORED entries are a view into `bytes` (no copy); DEFLATE entries are
 * inflated into a new buffer no larger than the declared size. Either way the CRC-32 must match.
 */
export function readZipEntry(bytes: Uint8Array, entry: ZipEntry): Uint8Array {
  const r = new Reader(bytes);
  const what = `zip entry ${JSON.stringify(entry.name)}`;
  const at = entry.localHeaderOffset;
  r.check(at, 30, `${what}: local header`);
  if (r.u32(at) !== SIG_LOCAL) fail(`${what}: no local file header at byte ${at}`);
  const start = at + 30 + r.u16(at + 26) + r.u16(at + 28);
  r.check(start, entry.compressedSize, `${what}: data`);
  const raw = bytes.subarray(start, start + entry.compressedSize);
  let data: Uint8Array;
  if (entry.method === 0) {
    data = raw;
  } else {
    try {
      data = entry.size === 0 ? new Uint8Array(0) : zlib.inflateRawSync(raw, { maxOutputLength: entry.size });
    } catch (e) {
      fail(`${what}: cannot inflate: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  if (data.length !== entry.size) fail(`${what}: holds ${data.length} bytes, but the directory says ${entry.size}`);
  const crc = crc32(data);
  if (crc !== entry.crc32) {
    fail(`${what}: CRC-32 mismatch (computed ${hex32(crc)}, the directory says ${hex32(entry.crc32)}); the file is corrupt`);
  }
  return data;
}

function hex32(n: number): string {
  return `0x${n.toString(16).padStart(8, '0')}`;
}

/** zlib.crc32 exists from Node 20.15 / 22.2; older Nodes get the table-driven version. */
function crc32(data: Uint8Array): number {
  const native = (zlib as { crc32?: (d: Uint8Array) => number }).crc32;
  if (typeof native === 'function') return native(data) >>> 0;
  let c = 0xffffffff;
  for (let i = 0; i < data.length; i++) c = CRC_TABLE[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** CRC-32 (IEEE, reflected polynomial 0xEDB88320), one entry per byte value; a constant, built once. */
const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();
