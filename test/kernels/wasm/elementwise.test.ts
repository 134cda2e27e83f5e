/**
 * The wasm elementwise kernels against the reference loops of kernels/cpu/elementwise.ts, on random shapes and
 * broadcast layouts (same shape, scalar, per-channel, rows, masks, either side broadcast, layouts the kernels leave
 * to the reference), lengths from 0 up with every remainder mod 4, and values that include ±0, ±∞, NaN and the
 * ReLU6 edges. The kernels are exact in float32 (module.ts says why), so results must be the reference's value
 * for value (NaN for NaN, −0 for −0). Each case runs on one thread and split over the default runtime's threads.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { binary, unary, type BinaryOp, type UnaryOp } from '../../../kernels/cpu/elementwise.ts';
import { binaryWasm, unaryWasm, type PointwiseOptions } from '../../../kernels/wasm/elementwise.ts';
import { BINARY_OPS, UNARY_OPS } from '../../../kernels/wasm/module.ts';
import { requireRuntime } from '../../../kernels/wasm/runtime.ts';
import { broadcastStrides, stridesOf } from '../../../src/tensor/shape.ts';
import { seeded, wasmOrSkip } from './helpers.ts';

/** Every call reaches wasm (no size floor), on one thread or split into as many shares as there are threads. */
const paths: [string, () => PointwiseOptions][] = [
  ['1 thread', () => ({ runtime: requireRuntime(), minElements: 0, minParallel: Infinity })],
  ['threads', () => ({ runtime: requireRuntime(), minElements: 0, minParallel: 0 })],
];

const SPECIAL = [0, -0, 1, -1, 6, -6, Infinity, -Infinity, NaN, 1e-40, 3.4e38];

/** Random float32 values in (−8, 8) with about one in eight a special value. */
function values(n: number, rand: () => number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = rand() < 0.125 ? SPECIAL[Math.floor(rand() * SPECIAL.length)] : (rand() * 2 - 1) * 8;
  return out;
}

function assertSame(what: string, got: Float32Array, want: Float32Array): void {
  assert.is(got.length, want.length, `${what}: length`);
  for (let i = 0; i < want.length; i++) {
    if (!Object.is(got[i], want[i]) && !(Number.isNaN(got[i]) && Number.isNaN(want[i]))) {
      assert.unreachable(`${what} [${i}]: wasm ${got[i]} reference ${want[i]}`);
    }
  }
}

const lengthArb = fc.oneof(fc.integer({ min: 0, max: 9 }), fc.integer({ min: 10, max: 300 }), fc.constantFrom(1023, 4099));

test('unaryWasm == unary for every wasm map, value for value', () => {
  if (!wasmOrSkip('unaryWasm')) return;
  fc.assert(fc.property(fc.constantFrom(...UNARY_OPS), lengthArb, fc.nat(), (op, n, seed) => {
    const x = values(n, seeded(seed));
    const want = new Float32Array(n);
    unary(op, x, want);
    for (const [path, opts] of paths) {
      const got = new Float32Array(n).fill(12345);
      unaryWasm(op, x, got, opts());
      assertSame(`${op} n=${n} ${path}`, got, want);
    }
  }), { numRuns: 300 });
});

test('unaryWasm leaves other maps and float64 to the reference', () => {
  const rand = seeded(3);
  const x = values(37, rand);
  for (const op of ['gelu', 'exp', 'sigmoid', 'geluGrad'] as UnaryOp[]) {
    const got = new Float32Array(37), want = new Float32Array(37);
    unaryWasm(op, x, got, { minElements: 0 });
    unary(op, x, want);
    assertSame(op, got, want);
  }
  const x64 = Float64Array.from(x), got64 = new Float64Array(37), want64 = new Float64Array(37);
  unaryWasm('relu', x64, got64, { minElements: 0 });
  unary('relu', x64, want64);
  assert.equal(Array.from(got64), Array.from(want64));
});

/**
 * A binary layout: the output shape, and the shapes of a and b broadcast to it. `kind` picks how b (or a, when
 * swapped) is broadcast: full, scalar, a random subset of axes kept (per-channel, rows, masks…), or both operands
 * broadcast (left to the reference).
 */
const layoutArb = fc.record({
  dims: fc.array(fc.oneof(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 6, max: 23 })), { minLength: 0, maxLength: 4 }),
  kind: fc.constantFrom('full', 'scalar', 'subset', 'subset', 'subset', 'both'),
  keep: fc.array(fc.boolean(), { minLength: 4, maxLength: 4 }),
  keepA: fc.array(fc.boolean(), { minLength: 4, maxLength: 4 }),
  swap: fc.boolean(),
  zero: fc.integer({ min: 0, max: 20 }),
}).map(({ dims, kind, keep, keepA, swap, zero }) => {
  const shape = zero === 0 && dims.length > 0 ? [...dims.slice(0, -1), 0] : dims;
  const reduce = (k: boolean[]) => shape.map((d, i) => (k[i] ? d : 1));
  const full = shape.slice();
  const other = kind === 'full' ? full : kind === 'scalar' ? shape.map(() => 1) : reduce(keep);
  const first = kind === 'both' ? reduce(keepA) : full;
  const [aShape, bShape] = swap ? [other, first] : [first, other];
  return { shape, aShape, bShape };
});

const sizeOf = (s: readonly number[]) => s.reduce((p, d) => p * d, 1);

test('binaryWasm == binary on random broadcast layouts, value for value', () => {
  if (!wasmOrSkip('binaryWasm')) return;
  const ops: BinaryOp[] = [...BINARY_OPS, 'pow', 'lt'];
  fc.assert(fc.property(fc.constantFrom(...ops), layoutArb, fc.nat(), (op, { shape, aShape, bShape }, seed) => {
    const rand = seeded(seed);
    const a = values(sizeOf(aShape), rand), b = values(sizeOf(bShape), rand);
    const aS = broadcastStrides(aShape, shape), bS = broadcastStrides(bShape, shape), oS = stridesOf(shape);
    const n = sizeOf(shape);
    const want = new Float32Array(n);
    binary(op, shape, a, aS, b, bS, want, oS);
    for (const [path, opts] of paths) {
      const got = new Float32Array(n).fill(12345);
      binaryWasm(op, shape, a, aS, b, bS, got, oS, opts());
      assertSame(`${op} ${JSON.stringify(shape)} a${JSON.stringify(aShape)} b${JSON.stringify(bShape)} ${path}`, got, want);
    }
  }), { numRuns: 400 });
});

test('binaryWasm at SparK-like layouts past the thread threshold (channel, mask, same shape)', () => {
  if (!wasmOrSkip('binaryWasm large')) return;
  const shape = [3, 17, 29, 31];
  const rand = seeded(9);
  const x = values(sizeOf(shape), rand);
  const others = [[3, 17, 29, 31], [1, 17, 1, 1], [3, 1, 29, 31], [1, 1, 1, 1], [1, 1, 1, 31]];
  for (const op of BINARY_OPS) {
    for (const o of others) {
      const y = values(sizeOf(o), rand);
      for (const [aShape, bShape, a, b] of [[shape, o, x, y], [o, shape, y, x]] as const) {
        const aS = broadcastStrides(aShape, shape), bS = broadcastStrides(bShape, shape), oS = stridesOf(shape);
        const want = new Float32Array(x.length), got = new Float32Array(x.length);
        binary(op, shape, a, aS, b, bS, want, oS);
        binaryWasm(op, shape, a, aS, b, bS, got, oS, { minParallel: 0 });
        assertSame(`${op} a${JSON.stringify(aShape)} b${JSON.stringify(bShape)}`, got, want);
      }
    }
  }
});

test('binaryWasm: float64 and uint8 outputs go to the reference; the arena is left as found', () => {
  const shape = [2, 3, 5];
  const rand = seeded(4);
  const a = Float64Array.from(values(30, rand)), b = Float64Array.from(values(3, rand));
  const aS = stridesOf(shape), bS = broadcastStrides([1, 3, 1], shape);
  const got = new Float64Array(30), want = new Float64Array(30);
  binaryWasm('div', shape, a, aS, b, bS, got, aS, { minElements: 0 });
  binary('div', shape, a, aS, b, bS, want, aS);
  assert.equal(Array.from(got), Array.from(want));
  const a32 = Float32Array.from(a), b32 = Float32Array.from(b);
  const cmp = new Uint8Array(30), cmpWant = new Uint8Array(30);
  binaryWasm('ge', shape, a32, aS, b32, bS, cmp, aS, { minElements: 0 });
  binary('ge', shape, a32, aS, b32, bS, cmpWant, aS);
  assert.equal(Array.from(cmp), Array.from(cmpWant));
  if (!wasmOrSkip('binaryWasm arena')) return;
  const rt = requireRuntime();
  const before = rt.used;
  binaryWasm('mul', shape, a32, aS, b32, bS, new Float32Array(30), aS, { minElements: 0, minParallel: 0 });
  unaryWasm('relu', a32, new Float32Array(30), { minElements: 0, minParallel: 0 });
  assert.is(rt.used, before);
});

test.run();
