/**
 * Tests of the safetensors reader/writer: round trips over every writable dtype, F16/BF16 decoding against known
 * values, files built byte by byte as the reference (Python/Rust safetensors) writes them, one test per kind of
 * malformed input, and a fuzz test that corrupts valid files and checks that parse only ever throws
 * SafetensorsError.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import type { DType, DataArray } from '../../src/tensor/dtype.ts';
import { parseSafetensors, serializeSafetensors, SafetensorsError, type RawTensor } from '../../src/io/safetensors.ts';

// ---------------------------------------------------------------------------------------------------------------
// Helpers

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

function u64le(n: number | bigint): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(n), true);
  return out;
}

function concat(...parts: ArrayLike<number>[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

/** A file whose header is exactly `header` (no padding) followed by `data` (a byte count gives zeros). */
function file(header: string, data: number | ArrayLike<number> = 0): Uint8Array {
  const h = utf8(header);
  return concat(u64le(h.length), h, typeof data === 'number' ? new Uint8Array(data) : data);
}

const bytesOf = (a: DataArray): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

function sameTensor(a: RawTensor, b: RawTensor): boolean {
  if (a.dtype !== b.dtype || a.shape.length !== b.shape.length) return false;
  if (a.shape.some((d, i) => d !== b.shape[i])) return false;
  const x = bytesOf(a.data);
  const y = bytesOf(b.data);
  if (a.dtype === 'bool') return x.length === y.length && x.every((v, i) => (v !== 0 ? 1 : 0) === y[i]);
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

function throwsST(fn: () => unknown, fragment: RegExp): void {
  let err: unknown;
  try { fn(); } catch (e) { err = e; }
  if (err === undefined) assert.unreachable(`expected a SafetensorsError matching ${fragment}`);
  assert.instance(err, SafetensorsError, `expected SafetensorsError, got ${String(err)}`);
  assert.is((err as Error).name, 'SafetensorsError');
  assert.match((err as Error).message, fragment);
}

// ---------------------------------------------------------------------------------------------------------------
// Arbitraries

const DTYPES: DType[] = ['float32', 'float64', 'int64', 'int32', 'uint8', 'bool'];

function dataArb(dtype: DType, n: number): fc.Arbitrary<DataArray> {
  const len = { minLength: n, maxLength: n };
  switch (dtype) {
    case 'float64': return fc.array(fc.double(), len).map((v) => Float64Array.from(v));
    case 'float32': return fc.array(fc.float(), len).map((v) => Float32Array.from(v));
    case 'int64': return fc.array(fc.bigInt(-(2n ** 63n), 2n ** 63n - 1n), len).map((v) => BigInt64Array.from(v));
    case 'int32': return fc.array(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), len).map((v) => Int32Array.from(v));
    case 'uint8': return fc.array(fc.integer({ min: 0, max: 255 }), len).map((v) => Uint8Array.from(v));
    case 'bool': return fc.array(fc.integer({ min: 0, max: 1 }), len).map((v) => Uint8Array.from(v));
  }
}

/** Shapes include [] (a scalar) and zero-size dimensions. */
const shapeArb = (maxDim: number) => fc.array(fc.integer({ min: 0, max: maxDim }), { maxLength: 4 });

function tensorArb(maxDim: number): fc.Arbitrary<RawTensor> {
  return fc.record({ dtype: fc.constantFrom(...DTYPES), shape: shapeArb(maxDim) }).chain(({ dtype, shape }) =>
    dataArb(dtype, shape.reduce((a, b) => a * b, 1)).map((data) => ({ dtype, shape, data })));
}

const nameArb = fc.string({ unit: 'binary', maxLength: 12 }).filter((s) => s !== '__metadata__');

const dictArb = (maxDim: number, maxKeys: number) =>
  fc.dictionary(nameArb, tensorArb(maxDim), { maxKeys });

const metadataArb = fc.option(fc.dictionary(fc.string({ unit: 'binary', maxLength: 8 }), fc.string({ unit: 'binary', maxLength: 8 }), { maxKeys: 3 }), { nil: undefined });

// ---------------------------------------------------------------------------------------------------------------
// Round trips

test('round trip: random dicts over every writable dtype, scalars, zero-size dims, metadata', () => {
  fc.assert(fc.property(dictArb(4, 6), metadataArb, (tensors, metadata) => {
    const bytes = serializeSafetensors(tensors, metadata);
    // Header length is a multiple of 8, and the file is exactly header + data.
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    assert.is(n % 8, 0);
    const out = parseSafetensors(bytes);
    assert.equal(Object.keys(out.tensors).sort(), Object.keys(tensors).sort());
    for (const name of Object.keys(tensors)) {
      assert.ok(sameTensor(tensors[name], out.tensors[name]), `tensor ${JSON.stringify(name)} differs`);
    }
    assert.equal({ ...out.metadata }, { ...(metadata ?? {}) });
  }), { numRuns: 300 });
});

test('round trip: int64 values past 2^53 stay exact', () => {
  const values = [2n ** 53n + 1n, -(2n ** 63n), 2n ** 63n - 1n, -(2n ** 53n) - 3n, 0n];
  const bytes = serializeSafetensors({ num_batches_tracked: { dtype: 'int64', shape: [5], data: BigInt64Array.from(values) } });
  const t = parseSafetensors(bytes).tensors.num_batches_tracked;
  assert.is(t.dtype, 'int64');
  assert.instance(t.data, BigInt64Array);
  assert.equal(Array.from(t.data as BigInt64Array), values);
});

test('round trip: scalars, empty tensors and the empty dict', () => {
  const tensors: Record<string, RawTensor> = {
    s: { dtype: 'float32', shape: [], data: Float32Array.of(-0) },
    z: { dtype: 'float64', shape: [3, 0, 2], data: new Float64Array(0) },
    e: { dtype: 'int64', shape: [0], data: new BigInt64Array(0) },
  };
  const out = parseSafetensors(serializeSafetensors(tensors)).tensors;
  assert.equal(out.s.shape, []);
  assert.ok(Object.is(out.s.data[0], -0));
  assert.equal(out.z.shape, [3, 0, 2]);
  assert.is(out.z.data.length, 0);
  assert.is(out.e.data.length, 0);
  assert.equal(parseSafetensors(serializeSafetensors({})), { tensors: {}, metadata: {} });
});

test('bool data is written and read as 0/1', () => {
  const bytes = serializeSafetensors({ m: { dtype: 'bool', shape: [3], data: Uint8Array.of(0, 7, 1) } });
  assert.equal(Array.from(parseSafetensors(bytes).tensors.m.data as Uint8Array), [0, 1, 1]);
});

test('parse copies data out: unaligned input, no aliasing', () => {
  // In name order, "a" (3 bytes of U8) puts "b" (F32) at an odd offset in the data buffer.
  const bytes = serializeSafetensors({
    a: { dtype: 'uint8', shape: [3], data: Uint8Array.of(1, 2, 3) },
    b: { dtype: 'float32', shape: [2], data: Float32Array.of(1.5, -2.25) },
    c: { dtype: 'float64', shape: [1], data: Float64Array.of(Math.PI) },
  });
  // Also shift the whole file by one byte inside a bigger buffer.
  const host = new Uint8Array(bytes.length + 1);
  host.set(bytes, 1);
  const view = host.subarray(1);
  const { tensors } = parseSafetensors(view);
  assert.equal(Array.from(tensors.b.data as Float32Array), [1.5, -2.25]);
  assert.equal(Array.from(tensors.c.data as Float64Array), [Math.PI]);
  for (const t of Object.values(tensors)) assert.is.not(t.data.buffer, host.buffer);
  host.fill(0);
  assert.equal(Array.from(tensors.a.data as Uint8Array), [1, 2, 3]);
  assert.equal(Array.from(tensors.b.data as Float32Array), [1.5, -2.25]);
});

test('serialize lays tensors out widest dtype first, then by name, contiguously, header padded with spaces', () => {
  const bytes = serializeSafetensors({
    b: { dtype: 'int32', shape: [1], data: Int32Array.of(7) },
    a: { dtype: 'uint8', shape: [2], data: Uint8Array.of(8, 9) },
  });
  const header = '{"b":{"dtype":"I32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"U8","shape":[2],"data_offsets":[4,6]}}';
  const padded = header + ' '.repeat((8 - (header.length % 8)) % 8);
  assert.equal(Array.from(bytes), Array.from(concat(u64le(padded.length), utf8(padded), [7, 0, 0, 0], [8, 9])));
});

test('serialize rejects bad input with SafetensorsError', () => {
  throwsST(() => serializeSafetensors({ x: { dtype: 'float32', shape: [2], data: new Float32Array(3) } }), /"x".*2 elements but data has 3/);
  throwsST(() => serializeSafetensors({ x: { dtype: 'float32', shape: [2], data: new Float64Array(2) } }), /"x".*not the typed array of dtype float32/);
  throwsST(() => serializeSafetensors({ x: { dtype: 'float16' as DType, shape: [1], data: new Float32Array(1) } }), /"x".*unsupported dtype/);
  throwsST(() => serializeSafetensors({ x: { dtype: 'uint8', shape: [-1], data: new Uint8Array(0) } }), /"x".*shape/);
  throwsST(() => serializeSafetensors({ __metadata__: { dtype: 'uint8', shape: [0], data: new Uint8Array(0) } }), /reserved/);
  throwsST(() => serializeSafetensors({}, { k: 3 as unknown as string }), /metadata key "k"/);
});

// ---------------------------------------------------------------------------------------------------------------
// Files as the reference writes them, built byte by byte

test('serialize matches the reference bytes for a single-dtype dict (no padding needed)', () => {
  // safetensors' own serialization test: {"attn.0": float32 [1,2,3] = 0..5}; the JSON is exactly 64 bytes.
  const header = '{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}';
  assert.is(header.length, 64);
  const data = [0, 0, 0, 0, 0, 0, 0x80, 0x3f, 0, 0, 0, 0x40, 0, 0, 0x40, 0x40, 0, 0, 0x80, 0x40, 0, 0, 0xa0, 0x40];
  const expected = concat(u64le(64), utf8(header), data);
  const got = serializeSafetensors({ 'attn.0': { dtype: 'float32', shape: [1, 2, 3], data: Float32Array.of(0, 1, 2, 3, 4, 5) } });
  assert.equal(Array.from(got), Array.from(expected));
  assert.equal(Array.from(parseSafetensors(expected).tensors['attn.0'].data as Float32Array), [0, 1, 2, 3, 4, 5]);
});

test('serialize matches the reference bytes where the header needs space padding', () => {
  const header = '{"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}}'; // 65 bytes → 72
  const data = bytesOf(Float32Array.of(0, 1, 2, 3, 4, 5));
  const expected = concat(u64le(72), utf8(header + ' '.repeat(7)), data);
  const got = serializeSafetensors({ attn0: { dtype: 'float32', shape: [1, 1, 2, 3], data: Float32Array.of(0, 1, 2, 3, 4, 5) } });
  assert.equal(Array.from(got), Array.from(expected));
});

test('serialize matches the reference bytes for empty dicts, with and without metadata', () => {
  assert.equal(Array.from(serializeSafetensors({})), Array.from(concat(u64le(8), utf8('{}      '))));
  const withMeta = concat(u64le(40), utf8('{"__metadata__":{"framework":"pt"}}     '));
  assert.equal(Array.from(serializeSafetensors({}, { framework: 'pt' })), Array.from(withMeta));
  assert.equal(parseSafetensors(withMeta), { tensors: {}, metadata: { framework: 'pt' } });
});

test('parse a mixed-dtype file laid out as Python safetensors writes it', () => {
  // save_file({"weight": f32 [[1,-2],[0.5,3]], "num_batches_tracked": i64 5, "ids": i32 [-1,256],
  //            "half": f16 [1,-0.5], "mask": bool [T,F,T]}, metadata={"format": "pt"})
  // The reference writer orders tensors by descending dtype alignment (I64, F32, I32, F16, BOOL), then by name;
  // its header is compact JSON, "__metadata__" first, padded with spaces to a multiple of 8.
  const header =
    '{"__metadata__":{"format":"pt"},' +
    '"num_batches_tracked":{"dtype":"I64","shape":[],"data_offsets":[0,8]},' +
    '"weight":{"dtype":"F32","shape":[2,2],"data_offsets":[8,24]},' +
    '"ids":{"dtype":"I32","shape":[2],"data_offsets":[24,32]},' +
    '"half":{"dtype":"F16","shape":[2],"data_offsets":[32,36]},' +
    '"mask":{"dtype":"BOOL","shape":[3],"data_offsets":[36,39]}}';
  const pad = (8 - (header.length % 8)) % 8;
  const bytes = concat(
    u64le(header.length + pad), utf8(header), utf8(' '.repeat(pad)),
    [5, 0, 0, 0, 0, 0, 0, 0], // I64 5
    [0, 0, 0x80, 0x3f], [0, 0, 0, 0xc0], [0, 0, 0, 0x3f], [0, 0, 0x40, 0x40], // F32 1, -2, 0.5, 3
    [0xff, 0xff, 0xff, 0xff], [0, 1, 0, 0], // I32 -1, 256
    [0x00, 0x3c], [0x00, 0xb8], // F16 1.0 (0x3c00), -0.5 (0xb800)
    [1, 0, 1], // BOOL
  );
  const { tensors, metadata } = parseSafetensors(bytes);
  assert.equal(metadata, { format: 'pt' });
  const nbt = tensors.num_batches_tracked;
  assert.is(nbt.dtype, 'int64');
  assert.equal(nbt.shape, []);
  assert.equal(Array.from(nbt.data as BigInt64Array), [5n]);
  assert.is(tensors.weight.dtype, 'float32');
  assert.equal(tensors.weight.shape, [2, 2]);
  assert.equal(Array.from(tensors.weight.data as Float32Array), [1, -2, 0.5, 3]);
  assert.is(tensors.ids.dtype, 'int32');
  assert.equal(Array.from(tensors.ids.data as Int32Array), [-1, 256]);
  assert.is(tensors.half.dtype, 'float32');
  assert.equal(Array.from(tensors.half.data as Float32Array), [1, -0.5]);
  assert.is(tensors.mask.dtype, 'bool');
  assert.instance(tensors.mask.data, Uint8Array);
  assert.equal(Array.from(tensors.mask.data as Uint8Array), [1, 0, 1]);
});

// ---------------------------------------------------------------------------------------------------------------
// F16 / BF16

function decodeHalf(dtype: 'F16' | 'BF16', bits: number[]): number[] {
  const data = concat(...bits.map((b) => [b & 0xff, b >> 8]));
  const out = parseSafetensors(file(`{"x":{"dtype":"${dtype}","shape":[${bits.length}],"data_offsets":[0,${data.length}]}}`, data));
  assert.is(out.tensors.x.dtype, 'float32');
  return Array.from(out.tensors.x.data as Float32Array);
}

function sameValues(got: number[], want: number[]): void {
  assert.is(got.length, want.length);
  got.forEach((g, i) => assert.ok(Object.is(g, want[i]), `element ${i}: got ${g}, want ${want[i]}`));
}

test('F16 decodes exactly: normals, subnormals, ±0, ±inf, nan', () => {
  const cases: [number, number][] = [
    [0x0000, 0], [0x8000, -0],
    [0x0001, 2 ** -24], // smallest subnormal
    [0x0002, 2 ** -23],
    [0x03ff, 1023 * 2 ** -24], // largest subnormal
    [0x8001, -(2 ** -24)],
    [0x0400, 2 ** -14], // smallest normal
    [0x3c00, 1], [0x3c01, 1 + 2 ** -10], [0xc000, -2], [0x3555, 0.333251953125], [0x3800, 0.5],
    [0x7bff, 65504], [0xfbff, -65504],
    [0x7c00, Infinity], [0xfc00, -Infinity],
    [0x7e00, NaN], [0x7c01, NaN], [0xfe00, NaN],
  ];
  sameValues(decodeHalf('F16', cases.map((c) => c[0])), cases.map((c) => c[1]));
});

test('F16 decodes every bit pattern like the formula (−1)^s · 2^(e−15) · (1 + m/1024)', () => {
  const all = Array.from({ length: 65536 }, (_, i) => i);
  const got = decodeHalf('F16', all);
  const want = all.map((h) => {
    const s = h & 0x8000 ? -1 : 1;
    const e = (h >> 10) & 0x1f;
    const m = h & 0x3ff;
    if (e === 0x1f) return m ? NaN : s * Infinity;
    return s * (e === 0 ? m * 2 ** -24 : 2 ** (e - 15) * (1 + m / 1024));
  });
  sameValues(got, want);
});

test('BF16 decodes exactly: normals, float32 subnormals, ±0, ±inf, nan', () => {
  const cases: [number, number][] = [
    [0x0000, 0], [0x8000, -0],
    [0x3f80, 1], [0xc000, -2], [0x3eab, 0.333984375], [0x3f00, 0.5],
    [0x0001, 2 ** -133], // float32 subnormal
    [0x0080, 2 ** -126],
    [0x7f7f, 255 * 2 ** 120], // largest finite
    [0x7f80, Infinity], [0xff80, -Infinity],
    [0x7fc0, NaN], [0xffc1, NaN],
  ];
  sameValues(decodeHalf('BF16', cases.map((c) => c[0])), cases.map((c) => c[1]));
});

// ---------------------------------------------------------------------------------------------------------------
// Malformed input: one test per case

test('malformed: file shorter than 8 bytes', () => {
  throwsST(() => parseSafetensors(new Uint8Array(0)), /0 bytes, shorter than the 8-byte/);
  throwsST(() => parseSafetensors(new Uint8Array(7)), /7 bytes, shorter than the 8-byte/);
});

test('malformed: header length past the end of the file', () => {
  throwsST(() => parseSafetensors(concat(u64le(100), utf8('{}'))), /header length 100 runs past the end of the file \(10 bytes/);
});

test('malformed: header length absurdly large', () => {
  throwsST(() => parseSafetensors(concat(u64le(2n ** 64n - 1n), utf8('{}'))), /absurdly large/);
  throwsST(() => parseSafetensors(concat(u64le(100_000_001), utf8('{}'))), /absurdly large/);
});

test('malformed: header not valid UTF-8', () => {
  throwsST(() => parseSafetensors(concat(u64le(4), [0x7b, 0xff, 0xfe, 0x7d])), /not valid UTF-8/);
  throwsST(() => parseSafetensors(concat(u64le(3), [0x7b, 0xed, 0xa0])), /not valid UTF-8/); // truncated/surrogate
});

test('malformed: header not valid JSON', () => {
  throwsST(() => parseSafetensors(file('{"a":')), /not valid JSON/);
  throwsST(() => parseSafetensors(file('')), /not valid JSON/);
  throwsST(() => parseSafetensors(file('\uFEFF{}')), /not valid JSON/); // a BOM is not JSON whitespace
});

test('malformed: header not a JSON object', () => {
  throwsST(() => parseSafetensors(file('[1,2]')), /must be a JSON object, got an array/);
  throwsST(() => parseSafetensors(file('null')), /must be a JSON object, got null/);
  throwsST(() => parseSafetensors(file('"x"')), /must be a JSON object, got string/);
  throwsST(() => parseSafetensors(file('12')), /must be a JSON object, got number/);
});

test('malformed: entry not an object', () => {
  throwsST(() => parseSafetensors(file('{"w":3}')), /tensor "w": entry must be an object/);
  throwsST(() => parseSafetensors(file('{"w":[1]}')), /tensor "w": entry must be an object/);
  throwsST(() => parseSafetensors(file('{"w":null}')), /tensor "w": entry must be an object/);
});

test('malformed: entry missing a field', () => {
  throwsST(() => parseSafetensors(file('{"w":{"dtype":"F32","shape":[1]}}', 4)), /tensor "w": entry is missing "data_offsets"/);
  throwsST(() => parseSafetensors(file('{"w":{"shape":[1],"data_offsets":[0,4]}}', 4)), /tensor "w": entry is missing "dtype"/);
  throwsST(() => parseSafetensors(file('{"w":{"dtype":"F32","data_offsets":[0,4]}}', 4)), /tensor "w": entry is missing "shape"/);
});

test('malformed: entry with an extra field', () => {
  throwsST(() => parseSafetensors(file('{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"offsets":[0,4]}}', 4)),
    /tensor "w": entry has an unexpected field "offsets"/);
});

test('malformed: dtype not a string', () => {
  throwsST(() => parseSafetensors(file('{"w":{"dtype":5,"shape":[1],"data_offsets":[0,4]}}', 4)), /tensor "w": dtype must be a string/);
});

test('malformed: unsupported dtype names the tensor and dtype', () => {
  throwsST(() => parseSafetensors(file('{"q":{"dtype":"I8","shape":[4],"data_offsets":[0,4]}}', 4)), /tensor "q": unsupported dtype "I8"/);
  throwsST(() => parseSafetensors(file('{"q":{"dtype":"f32","shape":[1],"data_offsets":[0,4]}}', 4)), /tensor "q": unsupported dtype "f32"/);
  throwsST(() => parseSafetensors(file('{"q":{"dtype":"toString","shape":[1],"data_offsets":[0,4]}}', 4)), /unsupported dtype "toString"/);
});

test('malformed: shape not an array', () => {
  throwsST(() => parseSafetensors(file('{"w":{"dtype":"F32","shape":"1","data_offsets":[0,4]}}', 4)), /tensor "w": shape must be an array/);
  throwsST(() => parseSafetensors(file('{"w":{"dtype":"F32","shape":{"0":1},"data_offsets":[0,4]}}', 4)), /tensor "w": shape must be an array/);
});

test('malformed: negative or non-integer dimensions', () => {
  throwsST(() => parseSafetensors(file('{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}}')), /tensor "w": shape \[-1\] has a dimension that is not a non-negative integer/);
  throwsST(() => parseSafetensors(file('{"w":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}}', 4)), /not a non-negative integer/);
  throwsST(() => parseSafetensors(file('{"w":{"dtype":"F32","shape":["2"],"data_offsets":[0,8]}}', 8)), /not a non-negative integer/);
  throwsST(() => parseSafetensors(file('{"w":{"dtype":"F32","shape":[1e300],"data_offsets":[0,8]}}', 8)), /not a non-negative integer/);
});

test('malformed: shape whose element count overflows', () => {
  throwsST(() => parseSafetensors(file('{"w":{"dtype":"F32","shape":[1099511627776,1099511627776],"data_offsets":[0,4]}}', 4)), /tensor "w": shape .* too many elements/);
});

test('malformed: data_offsets not two non-negative integers', () => {
  throwsST(() => parseSafetensors(file('{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4.5]}}', 4)), /tensor "w": data_offsets \[0,4.5\] must be two non-negative integers/);
  throwsST(() => parseSafetensors(file('{"w":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}}', 4)), /must be two non-negative integers/);
  throwsST(() => parseSafetensors(file('{"w":{"dtype":"F32","shape":[1],"data_offsets":["0","4"]}}', 4)), /must be two non-negative integers/);
  throwsST(() => parseSafetensors(file('{"w":{"dtype":"F32","shape":[1],"data_offsets":[0]}}', 4)), /tensor "w": data_offsets must be an array \[begin, end\]/);
  throwsST(() => parseSafetensors(file('{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}}', 4)), /data_offsets must be an array \[begin, end\]/);
  throwsST(() => parseSafetensors(file('{"w":{"dtype":"F32","shape":[1],"data_offsets":{"0":0,"1":4}}}', 4)), /data_offsets must be an array/);
});

test('malformed: data_offsets begin after end', () => {
  throwsST(() => parseSafetensors(file('{"w":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}}', 8)), /tensor "w": data_offsets begin 8 is after end 4/);
});

test('malformed: data_offsets end past the buffer', () => {
  throwsST(() => parseSafetensors(file('{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}', 8)), /tensor "w": data_offsets end 16 is past the end of the data buffer \(8 bytes\)/);
});

test('malformed: dtype × shape does not match the span', () => {
  throwsST(() => parseSafetensors(file('{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}', 8)), /tensor "w": dtype F32 with shape \[3\] needs 12 bytes, but data_offsets \[0, 8\] span 8/);
  throwsST(() => parseSafetensors(file('{"w":{"dtype":"F16","shape":[],"data_offsets":[0,4]}}', 4)), /needs 2 bytes/);
});

test('malformed: tensors overlapping', () => {
  throwsST(() => parseSafetensors(file(
    '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}', 12)),
  /tensor "b": data_offsets \[4, 12\] overlap tensor "a" \[0, 8\]/);
  // Two tensors on the same bytes.
  throwsST(() => parseSafetensors(file(
    '{"a":{"dtype":"I32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', 4)),
  /overlap tensor/);
});

test('malformed: a gap between tensors (the reference requires exact coverage)', () => {
  throwsST(() => parseSafetensors(file(
    '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}', 12)),
  /tensor "b": data_offsets \[8, 12\] leave a gap: bytes \[4, 8\)/);
  throwsST(() => parseSafetensors(file('{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', 8)), /tensor "a".*gap: bytes \[0, 4\)/);
});

test('malformed: trailing bytes after the last tensor', () => {
  throwsST(() => parseSafetensors(file('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', 8)), /4 trailing bytes after the last tensor/);
  throwsST(() => parseSafetensors(file('{}', 1)), /1 trailing bytes/);
});

test('accepted: entries in any order, zero-size tensors anywhere in the tiling', () => {
  const { tensors } = parseSafetensors(file(
    '{"b":{"dtype":"U8","shape":[2],"data_offsets":[2,4]},"e":{"dtype":"F64","shape":[0,3],"data_offsets":[2,2]},' +
    '"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}', [1, 2, 3, 4]));
  assert.equal(Array.from(tensors.a.data as Uint8Array), [1, 2]);
  assert.equal(Array.from(tensors.b.data as Uint8Array), [3, 4]);
  assert.is(tensors.e.data.length, 0);
});

test('malformed: __metadata__ not a map of strings to strings', () => {
  throwsST(() => parseSafetensors(file('{"__metadata__":"pt"}')), /"__metadata__" must be an object mapping strings to strings/);
  throwsST(() => parseSafetensors(file('{"__metadata__":["pt"]}')), /"__metadata__" must be an object/);
  throwsST(() => parseSafetensors(file('{"__metadata__":null}')), /"__metadata__" must be an object/);
  throwsST(() => parseSafetensors(file('{"__metadata__":{"epoch":3}}')), /"__metadata__" must map strings to strings, but key "epoch" holds number/);
  throwsST(() => parseSafetensors(file('{"__metadata__":{"a":{"b":"c"}}}')), /key "a" holds object/);
});

test('malformed: names or metadata with lone surrogate escapes (not Unicode text)', () => {
  throwsST(() => parseSafetensors(file('{"a\\ud800":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}}')), /name contains a lone surrogate/);
  throwsST(() => parseSafetensors(file('{"__metadata__":{"k":"\\udc00"}}')), /"__metadata__" key "k".*lone surrogate/);
  // An escaped pair is fine.
  const { metadata } = parseSafetensors(file('{"__metadata__":{"k":"\\ud83d\\ude00"}}'));
  assert.is(metadata.k, '\u{1F600}');
});

test('odd but valid names stay own keys', () => {
  const bytes = file('{"__metadata__":{"__proto__":"x"},"__proto__":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', [9]);
  const { tensors, metadata } = parseSafetensors(bytes);
  assert.ok(Object.hasOwn(tensors, '__proto__'));
  assert.equal(Array.from(tensors["__proto__"].data as Uint8Array), [9]);
  assert.ok(Object.hasOwn(metadata, '__proto__'));
  assert.is(metadata['__proto__'], 'x');
});

// ---------------------------------------------------------------------------------------------------------------
// Fuzz: corruptions of valid files only ever raise SafetensorsError

type Corruption =
  | { kind: 'flip'; pos: number; xor: number }
  | { kind: 'overwrite'; pos: number; bytes: Uint8Array }
  | { kind: 'truncate'; keep: number }
  | { kind: 'extend'; bytes: Uint8Array }
  | { kind: 'headerLength'; value: bigint }
  | { kind: 'headerLengthNudge'; delta: number }
  | { kind: 'spliceJson'; pos: number; drop: number; json: string; fixLength: boolean }
  | { kind: 'replaceField'; which: number; field: string; json: unknown }
  | { kind: 'nudgeOffsets'; which: number; begin: number; end: number; shift: boolean };

const corruptionArb: fc.Arbitrary<Corruption> = fc.oneof(
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('flip' as const), pos: fc.nat(), xor: fc.integer({ min: 1, max: 255 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('overwrite' as const), pos: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('truncate' as const), keep: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('extend' as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }) },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('headerLength' as const), value: fc.oneof(fc.bigInt(0n, 2n ** 64n - 1n), fc.bigInt(0n, 400n)) }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('headerLengthNudge' as const), delta: fc.integer({ min: -16, max: 16 }) }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('spliceJson' as const), pos: fc.nat(), drop: fc.nat({ max: 8 }),
      json: fc.oneof(fc.json({ maxDepth: 2 }), fc.constantFrom('{', '}', '"', ',', ':', '[', ']', '\\', '__metadata__')),
      fixLength: fc.boolean(),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('replaceField' as const), which: fc.nat(),
      field: fc.constantFrom('dtype', 'shape', 'data_offsets', 'extra', '__metadata__', 'entry'),
      json: fc.oneof(
        fc.jsonValue({ maxDepth: 2 }),
        fc.constantFrom('F16', 'BF16', 'I8', 'U64', 'F64', 'BOOL', [0, 0], [-1, 4], [4, 0], [0, 1e300], [2, 2], [], [0], [0.5]),
        fc.array(fc.integer({ min: -2, max: 40 }), { maxLength: 3 }),
      ),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('nudgeOffsets' as const), which: fc.nat(),
      begin: fc.integer({ min: -9, max: 9 }), end: fc.integer({ min: -9, max: 9 }), shift: fc.boolean(),
    }),
  },
);

function headerOf(bytes: Uint8Array): { n: number; text: string } | undefined {
  if (bytes.length < 8) return undefined;
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  if (8 + n > bytes.length) return undefined;
  return { n, text: new TextDecoder().decode(bytes.subarray(8, 8 + n)) };
}

function withHeader(bytes: Uint8Array, oldLen: number, text: string, fixLength: boolean): Uint8Array {
  const h = utf8(text);
  return concat(fixLength ? u64le(h.length) : bytes.subarray(0, 8), h, bytes.subarray(8 + oldLen));
}

function corrupt(bytes: Uint8Array, c: Corruption): Uint8Array {
  const out = bytes.slice();
  switch (c.kind) {
    case 'flip': if (out.length) out[c.pos % out.length] ^= c.xor; return out;
    case 'overwrite': if (out.length) out.set(c.bytes.subarray(0, Math.max(0, out.length - (c.pos % out.length))), c.pos % out.length); return out;
    case 'truncate': return out.subarray(0, c.keep % (out.length + 1));
    case 'extend': return concat(out, c.bytes);
    case 'headerLength': if (out.length >= 8) out.set(u64le(c.value)); return out;
    case 'headerLengthNudge': {
      const h = headerOf(out);
      if (h && h.n + c.delta >= 0) out.set(u64le(h.n + c.delta));
      return out;
    }
    case 'spliceJson': {
      const h = headerOf(out);
      if (!h) return out;
      const at = c.pos % (h.text.length + 1);
      return withHeader(out, h.n, h.text.slice(0, at) + c.json + h.text.slice(at + c.drop), c.fixLength);
    }
    case 'replaceField': case 'nudgeOffsets': {
      const h = headerOf(out);
      if (!h) return out;
      let header: Record<string, Record<string, unknown>>;
      try { header = JSON.parse(h.text); } catch { return out; }
      if (typeof header !== 'object' || header === null) return out;
      const names = Object.keys(header);
      const tensorNames = names.filter((k) => k !== '__metadata__');
      if (c.kind === 'nudgeOffsets') {
        const entry = tensorNames.length ? header[tensorNames[c.which % tensorNames.length]] : undefined;
        const o = entry?.data_offsets;
        if (!Array.isArray(o) || o.length !== 2) return out;
        // shift moves the whole span (gaps, overlaps); otherwise each end moves on its own.
        entry!.data_offsets = [o[0] + c.begin, o[1] + (c.shift ? c.begin : c.end)];
      } else if (c.field === '__metadata__') header.__metadata__ = c.json as Record<string, unknown>;
      else if (names.length) {
        const name = names[c.which % names.length];
        if (c.field === 'entry') header[name] = c.json as Record<string, unknown>;
        else if (typeof header[name] === 'object' && header[name] !== null) header[name][c.field] = c.json;
      }
      return withHeader(out, h.n, JSON.stringify(header), true);
    }
  }
}

test('fuzz: corrupted files raise SafetensorsError or parse consistently, never another error', () => {
  const fileArb = fc.tuple(dictArb(3, 4), metadataArb).map(([t, m]) => serializeSafetensors(t, m));
  fc.assert(fc.property(fileArb, fc.array(corruptionArb, { minLength: 1, maxLength: 3 }), (bytes, corruptions) => {
    const bad = corruptions.reduce(corrupt, bytes);
    let parsed: ReturnType<typeof parseSafetensors>;
    try {
      parsed = parseSafetensors(bad);
    } catch (e) {
      if (e instanceof SafetensorsError) return true;
      throw new Error(`parse threw ${String(e)} (not a SafetensorsError)`);
    }
    // Whatever parses is self-consistent and survives a round trip.
    for (const t of Object.values(parsed.tensors)) {
      assert.is(t.data.length, t.shape.reduce((a, b) => a * b, 1));
    }
    const again = parseSafetensors(serializeSafetensors(parsed.tensors, parsed.metadata));
    for (const [name, t] of Object.entries(parsed.tensors)) assert.ok(sameTensor(t, again.tensors[name]));
    return true;
  }), { numRuns: 2000 });
});

test.run();
