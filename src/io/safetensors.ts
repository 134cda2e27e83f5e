/**
 * The safetensors format, read and written as pure functions over bytes: no Tensor class, no file system (the
 * `io.loadSafetensors` / `io.saveSafetensors` wrappers add those).
 *
 * Layout: an 8-byte little-endian u64 N, then N bytes of UTF-8 JSON
 *   {name: {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, "__metadata__"?: {str: str}}
 * then the data buffer; offsets are relative to the start of that buffer, data is little-endian, C order.
 *
 * Reads F64, F32, F16, BF16, I64, I32, U8, BOOL (F16 and BF16 widen to float32, which holds them exactly);
 * writes F64, F32, I64, I32, U8, BOOL. Left out: the other dtypes of the format (I8, I16, U16, U32, U64, F8_*,
 * packed 4-bit), which raise a SafetensorsError naming the tensor; lazy or memory-mapped loading (every tensor is
 * copied out of the input, so the result never aliases it and unaligned offsets are fine).
 *
 * Parsing never throws anything but SafetensorsError on malformed input, and each message says what is wrong.
 */
import type { DType, DataArray } from '../tensor/dtype.ts';
import { halfToFloatBits, bfloat16ToFloatBits } from './half.ts';

export interface RawTensor { dtype: DType; shape: number[]; data: DataArray }

export class SafetensorsError extends Error {
  override name = 'SafetensorsError';
}

/** The reference implementation refuses headers over 100 MB; so do we, before decoding anything. */
const MAX_HEADER_BYTES = 100_000_000;

type FileDType = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'U8' | 'BOOL';

/** Bytes per element and the DType each readable file dtype decodes to. */
const READ: Record<FileDType, { size: number; dtype: DType }> = {
  F64: { size: 8, dtype: 'float64' },
  F32: { size: 4, dtype: 'float32' },
  F16: { size: 2, dtype: 'float32' },
  BF16: { size: 2, dtype: 'float32' },
  I64: { size: 8, dtype: 'int64' },
  I32: { size: 4, dtype: 'int32' },
  U8: { size: 1, dtype: 'uint8' },
  BOOL: { size: 1, dtype: 'bool' },
};

const WRITE: Record<DType, { code: FileDType; size: number }> = {
  float64: { code: 'F64', size: 8 },
  float32: { code: 'F32', size: 4 },
  int64: { code: 'I64', size: 8 },
  int32: { code: 'I32', size: 4 },
  uint8: { code: 'U8', size: 1 },
  bool: { code: 'BOOL', size: 1 },
};

/** A constant of the platform, not mutable state: typed arrays use the host byte order. */
const HOST_IS_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

const TENSOR_KEYS = ['dtype', 'shape', 'data_offsets'];

/**
 * A UTF-16 code unit in D800–DFFF that is not half of a pair (the `u` flag makes a pair one code point). Such a
 * string has no UTF-8 form: the reference's JSON parser rejects its escape, and JSON.stringify would write one.
 */
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

function fail(message: string): never {
  throw new SafetensorsError(message);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isSize(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/** A name as it reads in a message: quoted and escaped, so odd characters stay visible. */
function q(name: string): string {
  return JSON.stringify(name);
}

interface Entry { name: string; file: FileDType; shape: number[]; begin: number; end: number }

// ------------------------------------------------------------------------------------------------------------
// Parsing

export function parseSafetensors(
  bytes: Uint8Array,
): { tensors: Record<string, RawTensor>; metadata: Record<string, string> } {
  if (!(bytes instanceof Uint8Array)) fail('input is not a Uint8Array');
  if (bytes.length < 8) {
    fail(`file is ${bytes.length} bytes, shorter than the 8-byte header length that starts every safetensors file`);
  }
  const n = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_BYTES)) {
    fail(`header length ${n} is absurdly large (the limit is ${MAX_HEADER_BYTES} bytes)`);
  }
  const headerLen = Number(n);
  if (8 + headerLen > bytes.length) {
    fail(`header length ${headerLen} runs past the end of the file (${bytes.length} bytes, so at most ` +
      `${bytes.length - 8} bytes of header)`);
  }

  let text: string;
  try {
    // ignoreBOM keeps a leading U+FEFF in the text, so that JSON.parse rejects it as the reference does.
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes.subarray(8, 8 + headerLen));
  } catch {
    fail('header is not valid UTF-8');
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    fail(`header is not valid JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (!isPlainObject(header)) {
    fail(`header must be a JSON object, got ${header === null ? 'null' : Array.isArray(header) ? 'an array' : typeof header}`);
  }

  const dataStart = 8 + headerLen;
  const bufferLen = bytes.length - dataStart;
  let metadata: Record<string, string> = {};
  const entries: Entry[] = [];
  for (const [name, info] of Object.entries(header)) {
    // JSON.parse accepts escapes such as "\ud800" that decode to no Unicode text; the reference rejects them.
    if (LONE_SURROGATE.test(name)) fail(`tensor ${q(name)}: name contains a lone surrogate`);
    if (name === '__metadata__') metadata = checkMetadata(info);
    else entries.push(checkEntry(name, info, bufferLen));
  }
  checkCoverage(entries, bufferLen);

  const tensors = Object.fromEntries(
    entries.map((e) => [e.name, decode(e, bytes.subarray(dataStart + e.begin, dataStart + e.end))] as const),
  );
  return { tensors, metadata };
}

function checkMetadata(info: unknown): Record<string, string> {
  if (!isPlainObject(info)) fail('"__metadata__" must be an object mapping strings to strings');
  for (const [k, v] of Object.entries(info)) {
    if (typeof v !== 'string') {
      fail(`"__metadata__" must map strings to strings, but key ${q(k)} holds ${v === null ? 'null' : typeof v}`);
    }
    if (LONE_SURROGATE.test(k) || LONE_SURROGATE.test(v)) {
      fail(`"__metadata__" key ${q(k)}: key or value contains a lone surrogate`);
    }
  }
  // fromEntries defines own properties, so a key such as "__proto__" stays a plain key.
  return Object.fromEntries(Object.entries(info as Record<string, string>));
}

function checkEntry(name: string, info: unknown, bufferLen: number): Entry {
  const t = `tensor ${q(name)}`;
  if (!isPlainObject(info)) fail(`${t}: entry must be an object {dtype, shape, data_offsets}`);
  for (const k of TENSOR_KEYS) if (!Object.hasOwn(info, k)) fail(`${t}: entry is missing "${k}"`);
  for (const k of Object.keys(info)) {
    if (!TENSOR_KEYS.includes(k)) fail(`${t}: entry has an unexpected field ${q(k)} (allowed: dtype, shape, data_offsets)`);
  }
  const { dtype, shape, data_offsets: offsets } = info;

  if (typeof dtype !== 'string') fail(`${t}: dtype must be a string`);
  if (!Object.hasOwn(READ, dtype)) {
    fail(`${t}: unsupported dtype ${q(dtype)} (readable: ${Object.keys(READ).join(', ')})`);
  }
  const file = dtype as FileDType;

  if (!Array.isArray(shape)) fail(`${t}: shape must be an array of non-negative integers`);
  for (const d of shape) {
    if (!isSize(d)) fail(`${t}: shape ${JSON.stringify(shape)} has a dimension that is not a non-negative integer`);
  }
  if (!Array.isArray(offsets) || offsets.length !== 2) fail(`${t}: data_offsets must be an array [begin, end]`);
  const [begin, end] = offsets as unknown[];
  if (!isSize(begin) || !isSize(end)) {
    fail(`${t}: data_offsets ${JSON.stringify(offsets)} must be two non-negative integers`);
  }
  if (begin > end) fail(`${t}: data_offsets begin ${begin} is after end ${end}`);
  if (end > bufferLen) {
    fail(`${t}: data_offsets end ${end} is past the end of the data buffer (${bufferLen} bytes)`);
  }

  // product(shape) × size must equal end − begin. A zero dimension makes it 0 whatever the others are; otherwise
  // an exact product past 2^53 cannot match a span that fits in the file, so it is reported as an overflow.
  const { size } = READ[file];
  let count = 1;
  if (!shape.includes(0)) {
    for (const d of shape as number[]) {
      count *= d;
      if (count > Number.MAX_SAFE_INTEGER) fail(`${t}: shape ${JSON.stringify(shape)} has too many elements`);
    }
  } else count = 0;
  if (count * size !== end - begin) {
    fail(`${t}: dtype ${file} with shape ${JSON.stringify(shape)} needs ${count * size} bytes, but data_offsets ` +
      `[${begin}, ${end}] span ${end - begin}`);
  }
  return { name, file, shape: (shape as number[]).slice(), begin, end };
}

/**
 * Gaps: the reference (Rust `Metadata::validate`, then `read_metadata`) sorts the entries by data_offsets and
 * requires each to begin exactly where the previous ended, starting at 0, and the last to end at the end of the
 * file (InvalidOffset, MetadataIncompleteBuffer). We follow it: the tensors must tile the data buffer with no
 * overlap, no hole and no trailing bytes, so any file we accept is one the reference accepts too.
 */
function checkCoverage(entries: Entry[], bufferLen: number): void {
  const sorted = entries.slice().sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  let prev: Entry | undefined;
  for (const e of sorted) {
    if (e.begin < cursor) {
      fail(`tensor ${q(e.name)}: data_offsets [${e.begin}, ${e.end}] overlap tensor ${q(prev!.name)} ` +
        `[${prev!.begin}, ${prev!.end}]`);
    }
    if (e.begin > cursor) {
      fail(`tensor ${q(e.name)}: data_offsets [${e.begin}, ${e.end}] leave a gap: bytes [${cursor}, ${e.begin}) ` +
        'of the data buffer belong to no tensor');
    }
    cursor = e.end;
    prev = e;
  }
  if (cursor !== bufferLen) {
    fail(`the data buffer has ${bufferLen - cursor} trailing bytes after the last tensor ` +
      `(tensors cover ${cursor} of ${bufferLen} bytes)`);
  }
}

/**
 * A fresh copy of the bytes. Uint8Array.prototype.slice copies even when `src` is a Node Buffer, whose own
 * slice() returns a view of shared (often pooled) memory.
 */
function copyBytes(src: Uint8Array): Uint8Array {
  return Uint8Array.prototype.slice.call(src);
}

/** Copies `src` (the tensor's bytes, any alignment) into a fresh array of the tensor's DType. */
function decode(e: Entry, src: Uint8Array): RawTensor {
  const { dtype, size } = READ[e.file];
  const count = src.length / size;
  const shape = e.shape;
  switch (e.file) {
    case 'U8': return { dtype, shape, data: copyBytes(src) };
    case 'BOOL': {
      const out = new Uint8Array(count);
      for (let i = 0; i < count; i++) out[i] = src[i] !== 0 ? 1 : 0;
      return { dtype, shape, data: out };
    }
    case 'F16': case 'BF16': {
      const out = new Float32Array(count);
      const bits = new Uint32Array(out.buffer);
      const half = e.file === 'F16' ? halfToFloatBits : bfloat16ToFloatBits;
      for (let i = 0; i < count; i++) bits[i] = half(src[2 * i] | (src[2 * i + 1] << 8));
      return { dtype, shape, data: out };
    }
  }
  // Multi-byte types: a copy starts at offset 0 of its own buffer, so it is aligned for any typed array.
  if (HOST_IS_LITTLE_ENDIAN) {
    const buf = copyBytes(src).buffer;
    switch (e.file) {
      case 'F64': return { dtype, shape, data: new Float64Array(buf) };
      case 'F32': return { dtype, shape, data: new Float32Array(buf) };
      case 'I64': return { dtype, shape, data: new BigInt64Array(buf) };
      case 'I32': return { dtype, shape, data: new Int32Array(buf) };
    }
  }
  const view = new DataView(src.buffer, src.byteOffset, src.byteLength);
  switch (e.file) {
    case 'F64': { const a = new Float64Array(count); for (let i = 0; i < count; i++) a[i] = view.getFloat64(8 * i, true); return { dtype, shape, data: a }; }
    case 'F32': { const a = new Float32Array(count); for (let i = 0; i < count; i++) a[i] = view.getFloat32(4 * i, true); return { dtype, shape, data: a }; }
    case 'I64': { const a = new BigInt64Array(count); for (let i = 0; i < count; i++) a[i] = view.getBigInt64(8 * i, true); return { dtype, shape, data: a }; }
    case 'I32': { const a = new Int32Array(count); for (let i = 0; i < count; i++) a[i] = view.getInt32(4 * i, true); return { dtype, shape, data: a }; }
  }
}


// ------------------------------------------------------------------------------------------------------------
// Serialising

/** Orders strings by code point, as Rust orders `String`s (UTF-16 code-unit order differs above U+FFFF). */
function compareCodePoints(a: string, b: string): number {
  const ia = a[Symbol.iterator]();
  const ib = b[Symbol.iterator]();
  for (;;) {
    const x = ia.next();
    const y = ib.next();
    if (x.done || y.done) return (x.done ? 0 : 1) - (y.done ? 0 : 1);
    const d = x.value.codePointAt(0)! - y.value.codePointAt(0)!;
    if (d !== 0) return d;
  }
}

/** The typed-array class each DType's data must be. */
function dataMatches(dtype: DType, data: DataArray): boolean {
  switch (dtype) {
    case 'float64': return data instanceof Float64Array;
    case 'float32': return data instanceof Float32Array;
    case 'int64': return data instanceof BigInt64Array;
    case 'int32': return data instanceof Int32Array;
    case 'uint8': case 'bool': return data instanceof Uint8Array;
  }
}


/**
 * Tensors are laid out by descending element size, then name (code-point order), contiguously from offset 0, as
 * the reference writer does, so each tensor's data is aligned to its element size; the header lists
 * `__metadata__` first (when given and non-empty), then the tensors in that order, each as
 * {"dtype","shape","data_offsets"}, compact JSON as serde_json writes it, padded with spaces to a multiple of 8.
 */
export function serializeSafetensors(tensors: Record<string, RawTensor>, metadata?: Record<string, string>): Uint8Array {
  // widest dtype first keeps every tensor aligned to its element size; ties by name, as the reference writer
  const width = (name: string) => (Object.hasOwn(WRITE, tensors[name]?.dtype) ? WRITE[tensors[name].dtype].size : 0);
  const names = Object.keys(tensors).sort((a, b) => width(b) - width(a) || compareCodePoints(a, b));
  const parts: string[] = [];
  if (metadata !== undefined) {
    const kv = Object.entries(metadata).map(([k, v]) => {
      if (typeof v !== 'string') fail(`metadata key ${q(k)} holds ${typeof v}; metadata values must be strings`);
      if (LONE_SURROGATE.test(k) || LONE_SURROGATE.test(v)) fail(`metadata key ${q(k)} contains a lone surrogate`);
      return `${JSON.stringify(k)}:${JSON.stringify(v)}`;
    });
    if (kv.length > 0) parts.push(`"__metadata__":{${kv.join(',')}}`);
  }
  let offset = 0;
  const layout: { t: RawTensor; begin: number }[] = [];
  for (const name of names) {
    const t = tensors[name];
    const what = `tensor ${q(name)}`;
    if (name === '__metadata__') fail('"__metadata__" is reserved and cannot name a tensor');
    if (LONE_SURROGATE.test(name)) fail(`${what}: name contains a lone surrogate`);
    if (!isPlainObject(t) || !Object.hasOwn(WRITE, t.dtype)) fail(`${what}: unsupported dtype ${String(t?.dtype)}`);
    if (!Array.isArray(t.shape) || !t.shape.every(isSize)) {
      fail(`${what}: shape ${JSON.stringify(t.shape)} must be an array of non-negative integers`);
    }
    if (!dataMatches(t.dtype, t.data)) fail(`${what}: data is not the typed array of dtype ${t.dtype}`);
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (count !== t.data.length) {
      fail(`${what}: shape ${JSON.stringify(t.shape)} has ${count} elements but data has ${t.data.length}`);
    }
    const { code, size } = WRITE[t.dtype];
    const begin = offset;
    offset += count * size;
    layout.push({ t, begin });
    parts.push(`${JSON.stringify(name)}:{"dtype":"${code}","shape":[${t.shape.join(',')}],` +
      `"data_offsets":[${begin},${offset}]}`);
  }

  const header = new TextEncoder().encode(`{${parts.join(',')}}`);
  const padded = Math.ceil(header.length / 8) * 8;
  const out = new Uint8Array(8 + padded + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(padded), true);
  out.set(header, 8);
  out.fill(0x20, 8 + header.length, 8 + padded);

  const base = 8 + padded;
  for (const { t, begin } of layout) {
    const at = base + begin;
    const { data } = t;
    if (t.dtype === 'bool') {
      for (let i = 0; i < data.length; i++) out[at + i] = (data as Uint8Array)[i] !== 0 ? 1 : 0;
    } else if (HOST_IS_LITTLE_ENDIAN || data instanceof Uint8Array) {
      out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), at);
    } else {
      const view = new DataView(out.buffer, at, data.byteLength);
      for (let i = 0; i < data.length; i++) {
        if (data instanceof Float64Array) view.setFloat64(8 * i, data[i], true);
        else if (data instanceof Float32Array) view.setFloat32(4 * i, data[i], true);
        else if (data instanceof BigInt64Array) view.setBigInt64(8 * i, data[i], true);
        else view.setInt32(4 * i, (data as Int32Array)[i], true);
      }
    }
  }
  return out;
}
