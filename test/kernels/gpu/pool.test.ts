/**
 * gpu.js pooling kernels against kernels/cpu/pool.ts, per gpu.js mode present, on random shapes: max pool with
 * dilation, padding and ceil-mode sizes on inputs full of ties, −∞ and NaN (values and argmax exactly equal;
 * the backward fed the device argmax), average pool with and without countIncludePad and divisorOverride,
 * adaptive average pool shrinking and growing; the forward on a dilated window wholly in the padding (whose
 * backward kernels/gpu/pool.ts leaves out). Tolerance: assertClose's float32 summation bound, terms = the
 * window (or the windows holding an input) plus two roundings for the division.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import * as ref from '../../../kernels/cpu/pool.ts';
import type { AdaptivePool2dParams, AvgPool2dParams, Pool2dParams } from '../../../kernels/cpu/pool.ts';
import * as gpuPool from '../../../kernels/gpu/pool.ts';
import { affine } from '../../../kernels/gpu/elementwise.ts';
import type { GpuRuntime } from '../../../kernels/gpu/runtime.ts';
import { abs64, assertClose, forEachMode, randomF32, seeded } from './helpers.ts';

/** PyTorch's pooled size along one axis, floor or ceil mode (a ceil-mode window must start inside input or left pad). */
function poolOut(inSize: number, k: number, stride: number, pad: number, dilation: number, ceil: boolean): number {
  const span = inSize + 2 * pad - dilation * (k - 1) - 1;
  let out = (ceil ? Math.ceil(span / stride) : Math.floor(span / stride)) + 1;
  if (ceil && (out - 1) * stride >= inSize + pad) out--;
  return out;
}

/**
 * Random pooling shapes, pad ≤ k/2 as PyTorch requires, the input at least one dilated window high and wide:
 * then every window holds an input tap (on a smaller input a dilated window can fall wholly in the padding,
 * the case the gpu backward leaves out; see the named test below).
 */
function poolArb(dilated: boolean): fc.Arbitrary<Pool2dParams> {
  return fc.record({
    N: fc.integer({ min: 1, max: 2 }), C: fc.integer({ min: 1, max: 3 }),
    H: fc.integer({ min: 1, max: 8 }), W: fc.integer({ min: 1, max: 8 }),
    kH: fc.integer({ min: 1, max: 4 }), kW: fc.integer({ min: 1, max: 4 }),
    strideH: fc.integer({ min: 1, max: 3 }), strideW: fc.integer({ min: 1, max: 3 }),
    padFracH: fc.double({ min: 0, max: 1, noNaN: true }), padFracW: fc.double({ min: 0, max: 1, noNaN: true }),
    dilationH: fc.integer({ min: 1, max: dilated ? 2 : 1 }), dilationW: fc.integer({ min: 1, max: dilated ? 2 : 1 }),
    ceil: fc.boolean(),
  }).map(({ padFracH, padFracW, ceil, ...s }) => {
    const padH = Math.floor(padFracH * (Math.floor(s.kH / 2) + 0.999)), padW = Math.floor(padFracW * (Math.floor(s.kW / 2) + 0.999));
    const H = Math.max(s.H, s.dilationH * (s.kH - 1) + 1), W = Math.max(s.W, s.dilationW * (s.kW - 1) + 1);
    return {
      ...s, H, W, padH, padW,
      OH: poolOut(H, s.kH, s.strideH, padH, s.dilationH, ceil), OW: poolOut(W, s.kW, s.strideW, padW, s.dilationW, ceil),
    };
  });
}

/** Inputs with ties (a few distinct values), −∞ and the odd NaN, or plain random values. */
function poolInput(n: number, rand: () => number, awkward: boolean): Float32Array {
  const x = randomF32(n, rand);
  if (!awkward) return x;
  const pool = [-Infinity, -1, -0.5, 0, 0.5, 1];
  for (let i = 0; i < n; i++) {
    const u = rand();
    x[i] = u < 0.05 ? NaN : pool[Math.floor(rand() * pool.length)];
  }
  return x;
}

function sameValues(what: string, got: ArrayLike<number>, want: ArrayLike<number>): void {
  assert.is(got.length, want.length, `${what}: length`);
  for (let i = 0; i < want.length; i++) {
    if (Object.is(got[i], want[i]) || (Number.isNaN(got[i]) && Number.isNaN(want[i])) || got[i] === want[i]) continue;
    assert.unreachable(`${what} [${i}]: gpu ${got[i]}, reference ${want[i]}`);
  }
}

function checkMax(rt: GpuRuntime, p: Pool2dParams, seed: number, awkward: boolean): void {
  const rand = seeded(seed);
  const x = poolInput(p.N * p.C * p.H * p.W, rand, awkward);
  const nOut = p.N * p.C * p.OH * p.OW;
  const y = new Float32Array(nOut), argmax = new Int32Array(nOut);
  ref.maxPool2d(x, y, argmax, p);
  const what = `maxPool2d ${JSON.stringify(p)}`;
  const g = gpuPool.maxPool2d(rt, x, p);
  sameValues(what, g.y.read(), y);
  sameValues(`${what} argmax`, g.argmax.read(), argmax);
  const dy = randomF32(nOut, rand);
  const dx = new Float64Array(x.length), mag = new Float64Array(x.length);
  ref.maxPool2dBackward(Float64Array.from(dy), argmax, dx, p);
  ref.maxPool2dBackward(abs64(dy), argmax, mag, p);
  const gdx = gpuPool.maxPool2dBackward(rt, dy, g.argmax, p);
  assertClose(`${what} backward`, gdx.read(), dx, mag, p.kH * p.kW);
  g.y.dispose(); g.argmax.dispose(); gdx.dispose();
}

forEachMode('gpu maxPool2d and its backward equal the reference (ties, −∞, NaN, dilation, ceil mode)', (rt) => {
  const before = rt.liveTextures();
  fc.assert(fc.property(poolArb(true), fc.integer(), fc.boolean(), (p, seed, awkward) => checkMax(rt, p, seed, awkward)), { numRuns: 6 });
  assert.is(rt.liveTextures(), before);
});

forEachMode('gpu maxPool2d: a dilated window wholly in the padding gives −∞ and the reference\'s index', (rt) => {
  // taps ih = −1 and 1 of a 1-high input: PyTorch's stepped start (1) makes the index 1·W + 0, past the plane
  const p: Pool2dParams = { N: 1, C: 2, H: 1, W: 3, kH: 2, kW: 1, strideH: 1, strideW: 1, dilationH: 2, dilationW: 1, padH: 1, padW: 0, OH: 1, OW: 3 };
  const x = randomF32(6, seeded(5));
  const y = new Float32Array(6), argmax = new Int32Array(6);
  ref.maxPool2d(x, y, argmax, p);
  const g = gpuPool.maxPool2d(rt, x, p);
  sameValues('y', g.y.read(), y);
  sameValues('argmax', g.argmax.read(), argmax);
  assert.equal(Array.from(y), [-Infinity, -Infinity, -Infinity, -Infinity, -Infinity, -Infinity]);
  g.y.dispose(); g.argmax.dispose();
});

const avgArb: fc.Arbitrary<AvgPool2dParams> = fc.record({
  p: poolArb(false), countIncludePad: fc.boolean(), override: fc.integer({ min: -8, max: 4 }),
}).map(({ p, countIncludePad, override }) => ({ ...p, countIncludePad, divisorOverride: override > 0 ? override : undefined }));

/** Padded windows whose counted size differs with countIncludePad: the property may draw few of them. */
const avgNamed: AvgPool2dParams[] = [true, false].map((countIncludePad) => ({
  N: 1, C: 2, H: 5, W: 6, OH: 3, OW: 3, kH: 3, kW: 3, strideH: 2, strideW: 2, padH: 1, padW: 1, dilationH: 1, dilationW: 1, countIncludePad,
}));

forEachMode('gpu avgPool2d and its backward equal the reference (countIncludePad, divisorOverride)', (rt) => {
  const before = rt.liveTextures();
  const check = (p: AvgPool2dParams, seed: number): void => {
    const rand = seeded(seed);
    const x = randomF32(p.N * p.C * p.H * p.W, rand), dy = randomF32(p.N * p.C * p.OH * p.OW, rand);
    const y = new Float64Array(dy.length), yMag = new Float64Array(dy.length);
    ref.avgPool2d(Float64Array.from(x), y, p);
    ref.avgPool2d(abs64(x), yMag, p);
    const what = `avgPool2d ${JSON.stringify(p)}`;
    // x on the device for the forward pass, as inside a model
    const dxIn = affine(rt, x, x.length, 1, 0);
    const gy = gpuPool.avgPool2d(rt, dxIn, p);
    assertClose(what, gy.read(), y, yMag, p.kH * p.kW + 2);
    const dx = new Float64Array(x.length), dxMag = new Float64Array(x.length);
    ref.avgPool2dBackward(Float64Array.from(dy), dx, p);
    ref.avgPool2dBackward(abs64(dy), dxMag, p);
    const gdx = gpuPool.avgPool2dBackward(rt, dy, p);
    assertClose(`${what} backward`, gdx.read(), dx, dxMag, p.kH * p.kW + 2);
    dxIn.dispose(); gy.dispose(); gdx.dispose();
  };
  avgNamed.forEach((p, i) => check(p, i));
  fc.assert(fc.property(avgArb, fc.integer(), check), { numRuns: 6 });
  assert.is(rt.liveTextures(), before);
});

const adaptiveArb: fc.Arbitrary<AdaptivePool2dParams> = fc.record({
  N: fc.integer({ min: 1, max: 2 }), C: fc.integer({ min: 1, max: 3 }),
  H: fc.integer({ min: 1, max: 9 }), W: fc.integer({ min: 1, max: 9 }),
  OH: fc.integer({ min: 1, max: 6 }), OW: fc.integer({ min: 1, max: 6 }),
});

forEachMode('gpu adaptiveAvgPool2d and its backward equal the reference (shrinking and growing)', (rt) => {
  fc.assert(fc.property(adaptiveArb, fc.integer(), (p, seed) => {
    const rand = seeded(seed);
    const x = randomF32(p.N * p.C * p.H * p.W, rand), dy = randomF32(p.N * p.C * p.OH * p.OW, rand);
    const y = new Float64Array(dy.length), yMag = new Float64Array(dy.length);
    ref.adaptiveAvgPool2d(Float64Array.from(x), y, p);
    ref.adaptiveAvgPool2d(abs64(x), yMag, p);
    // the widest window: ⌈H/OH⌉ + 1 rows by ⌈W/OW⌉ + 1 columns at most
    const span = (Math.ceil(p.H / p.OH) + 1) * (Math.ceil(p.W / p.OW) + 1);
    const what = `adaptiveAvgPool2d ${JSON.stringify(p)}`;
    const gy = gpuPool.adaptiveAvgPool2d(rt, x, p);
    assertClose(what, gy.read(), y, yMag, span + 2);
    const dx = new Float64Array(x.length), dxMag = new Float64Array(x.length);
    ref.adaptiveAvgPool2dBackward(Float64Array.from(dy), dx, p);
    ref.adaptiveAvgPool2dBackward(abs64(dy), dxMag, p);
    const gdx = gpuPool.adaptiveAvgPool2dBackward(rt, dy, p);
    assertClose(`${what} backward`, gdx.read(), dx, dxMag, (Math.ceil(p.OH / p.H) + 1) * (Math.ceil(p.OW / p.W) + 1) + 2);
    gy.dispose(); gdx.dispose();
  }), { numRuns: 8 });
});

test.run();
