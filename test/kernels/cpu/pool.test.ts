/**
 * Pooling kernels: the backward passes proven to be the adjoints of the forward ones (average pools), the max-pool
 * argmax rules (in the window, first maximum on ties, NaN wins) and scatter, and hand-checked PyTorch semantics
 * (padding divisors, ceil-mode windows, adaptive windows).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import {
  adaptiveAvgPool2d, adaptiveAvgPool2dBackward, avgPool2d, avgPool2dBackward, maxPool2d, maxPool2dBackward,
  type AdaptivePool2dParams, type AvgPool2dParams, type Pool2dParams,
} from '../../../kernels/cpu/pool.ts';
import type { FloatArray } from '../../../src/tensor/dtype.ts';

/** Output size along one axis as PyTorch computes it; in ceil mode the last window must start inside the input or the left padding. */
function poolOut(inSize: number, k: number, stride: number, pad: number, dilation: number, ceilMode: boolean): number {
  const span = dilation * (k - 1) + 1;
  let out = Math.floor((inSize + 2 * pad - span + (ceilMode ? stride - 1 : 0)) / stride) + 1;
  if (ceilMode && (out - 1) * stride >= inSize + pad) out--;
  return out;
}

/** Random pool shapes within PyTorch's limits: padding at most half the kernel, at least one output. */
const poolParamsArb = (withDilation: boolean): fc.Arbitrary<Pool2dParams> => fc.record({
  N: fc.integer({ min: 1, max: 2 }), C: fc.integer({ min: 1, max: 3 }),
  kH: fc.integer({ min: 1, max: 4 }), kW: fc.integer({ min: 1, max: 4 }),
  strideH: fc.integer({ min: 1, max: 3 }), strideW: fc.integer({ min: 1, max: 3 }),
  padH: fc.nat(2), padW: fc.nat(2),
  dilationH: fc.integer({ min: 1, max: withDilation ? 2 : 1 }), dilationW: fc.integer({ min: 1, max: withDilation ? 2 : 1 }),
  extraH: fc.integer({ min: 0, max: 6 }), extraW: fc.integer({ min: 0, max: 6 }),
  ceilMode: fc.boolean(),
}).map(({ extraH, extraW, ceilMode, ...s }) => {
  const padH = Math.min(s.padH, Math.floor(s.kH / 2));
  const padW = Math.min(s.padW, Math.floor(s.kW / 2));
  const H = s.dilationH * (s.kH - 1) + 1 + extraH;
  const W = s.dilationW * (s.kW - 1) + 1 + extraW;
  return {
    ...s, H, W, padH, padW,
    OH: poolOut(H, s.kH, s.strideH, padH, s.dilationH, ceilMode),
    OW: poolOut(W, s.kW, s.strideW, padW, s.dilationW, ceilMode),
  };
});

const avgParamsArb: fc.Arbitrary<AvgPool2dParams> = fc.tuple(
  poolParamsArb(false), fc.boolean(), fc.option(fc.integer({ min: 1, max: 10 }), { nil: undefined }),
).map(([p, countIncludePad, divisorOverride]) => ({ ...p, countIncludePad, divisorOverride }));

const adaptiveParamsArb: fc.Arbitrary<AdaptivePool2dParams> = fc.record({
  N: fc.integer({ min: 1, max: 2 }), C: fc.integer({ min: 1, max: 3 }),
  H: fc.integer({ min: 1, max: 9 }), W: fc.integer({ min: 1, max: 9 }),
  OH: fc.integer({ min: 1, max: 9 }), OW: fc.integer({ min: 1, max: 9 }),
});

function randomArray(n: number): Float64Array {
  return Float64Array.from({ length: n }, () => Math.random() * 2 - 1);
}

function dot(a: FloatArray, b: FloatArray): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += a[i] * b[i];
  return sum;
}

/**
 * <forward(x), dy> = <x, backward(dy)> for a linear forward and its claimed adjoint. Both sides add the same
 * products x·dy/divisor in different orders, so they agree up to rounding relative to Σ|products|.
 */
function assertAdjoint(
  xSize: number, ySize: number,
  forward: (x: Float64Array, y: Float64Array) => void, backward: (dy: Float64Array, dx: Float64Array) => void,
  what: string,
) {
  const x = randomArray(xSize), dy = randomArray(ySize);
  const y = new Float64Array(ySize), dx = new Float64Array(xSize).fill(NaN);
  forward(x, y);
  backward(dy, dx);
  const viaY = dot(y, dy), viaX = dot(x, dx);
  const magnitude = dot(y.map(Math.abs), dy.map(Math.abs)) + dot(x.map(Math.abs), dx.map(Math.abs));
  assert.ok(Math.abs(viaY - viaX) <= 1e-12 * magnitude, `${what}: <y,dy> ${viaY} vs <x,dx> ${viaX}`);
}

test('avgPool2dBackward is the adjoint of avgPool2d (padding, ceil mode, divisor rules)', () => {
  fc.assert(fc.property(avgParamsArb, (p) => {
    assertAdjoint(p.N * p.C * p.H * p.W, p.N * p.C * p.OH * p.OW,
      (x, y) => avgPool2d(x, y, p), (dy, dx) => avgPool2dBackward(dy, dx, p), JSON.stringify(p));
  }), { numRuns: 50 });
});

test('adaptiveAvgPool2dBackward is the adjoint of adaptiveAvgPool2d', () => {
  fc.assert(fc.property(adaptiveParamsArb, (p) => {
    assertAdjoint(p.N * p.C * p.H * p.W, p.N * p.C * p.OH * p.OW,
      (x, y) => adaptiveAvgPool2d(x, y, p), (dy, dx) => adaptiveAvgPool2dBackward(dy, dx, p), JSON.stringify(p));
  }), { numRuns: 50 });
});

test('maxPool2d: argmax is the first maximum of its window, and the backward scatters dy to it', () => {
  fc.assert(fc.property(poolParamsArb(true), (p) => {
    const { N, C, H, W, OH, OW } = p;
    // Values from a small set, so that ties are common.
    const x = Float64Array.from({ length: N * C * H * W }, () => Math.floor(Math.random() * 4));
    const y = new Float64Array(N * C * OH * OW), argmax = new Int32Array(y.length);
    maxPool2d(x, y, argmax, p);
    const dy = randomArray(y.length), dx = new Float64Array(x.length).fill(NaN);
    maxPool2dBackward(dy, argmax, dx, p);
    const expectedDx = new Float64Array(x.length);
    for (let plane = 0; plane < N * C; plane++) {
      for (let oh = 0; oh < OH; oh++) {
        for (let ow = 0; ow < OW; ow++) {
          // The window's in-bounds taps in row-major order.
          const taps: number[] = [];
          for (let i = 0; i < p.kH; i++) {
            const ih = oh * p.strideH - p.padH + i * p.dilationH;
            for (let j = 0; j < p.kW; j++) {
              const iw = ow * p.strideW - p.padW + j * p.dilationW;
              if (ih >= 0 && ih < H && iw >= 0 && iw < W) taps.push(ih * W + iw);
            }
          }
          const o = plane * OH * OW + oh * OW + ow;
          const values = taps.map((t) => x[plane * H * W + t]);
          const max = Math.max(...values);
          assert.is(y[o], max);
          assert.is(argmax[o], taps[values.indexOf(max)], `first maximum for output ${o} of ${JSON.stringify(p)}`);
          expectedDx[plane * H * W + argmax[o]] += dy[o];
        }
      }
    }
    assert.equal(Array.from(dx), Array.from(expectedDx));
  }), { numRuns: 50 });
});

const ones = (n: number) => new Float64Array(n).fill(1);
const unitPool = { N: 1, C: 1, dilationH: 1, dilationW: 1 };

test('maxPool2d: a NaN in the window wins, and its index is the last NaN scanned (as PyTorch CPU)', () => {
  const x = new Float64Array([1, NaN, 5, NaN]);
  const y = new Float64Array(1), argmax = new Int32Array(1);
  maxPool2d(x, y, argmax, { ...unitPool, H: 2, W: 2, OH: 1, OW: 1, kH: 2, kW: 2, strideH: 2, strideW: 2, padH: 0, padW: 0 });
  assert.ok(Number.isNaN(y[0]));
  assert.is(argmax[0], 3);
});

test('maxPool2d: padding is −∞, and a flat window picks its top-left input', () => {
  // 3×3 ones, kernel 3, stride 2, padding 1: every window holds ties only.
  const y = new Float64Array(4), argmax = new Int32Array(4);
  maxPool2d(ones(9), y, argmax, { ...unitPool, H: 3, W: 3, OH: 2, OW: 2, kH: 3, kW: 3, strideH: 2, strideW: 2, padH: 1, padW: 1 });
  assert.equal(Array.from(y), [1, 1, 1, 1]);
  assert.equal(Array.from(argmax), [0, 1, 3, 4]);
  // Negative inputs are still larger than the padding.
  const negative = new Float64Array(9).fill(-5);
  maxPool2d(negative, y, argmax, { ...unitPool, H: 3, W: 3, OH: 2, OW: 2, kH: 3, kW: 3, strideH: 2, strideW: 2, padH: 1, padW: 1 });
  assert.equal(Array.from(y), [-5, -5, -5, -5]);
});

const pool3s2p1 = { ...unitPool, kH: 3, kW: 3, strideH: 2, strideW: 2, padH: 1, padW: 1 };

test('avgPool2d 3×3 s2 p1 on 5×5 ones: padding counts (corner 4/9, edge 6/9) unless excluded', () => {
  const p = { ...pool3s2p1, H: 5, W: 5, OH: 3, OW: 3 };
  const y = new Float64Array(9);
  avgPool2d(ones(25), y, { ...p, countIncludePad: true });
  assert.equal(Array.from(y), [4 / 9, 6 / 9, 4 / 9, 6 / 9, 1, 6 / 9, 4 / 9, 6 / 9, 4 / 9]);
  avgPool2d(ones(25), y, { ...p, countIncludePad: false });
  assert.equal(Array.from(y), new Array(9).fill(1));
  avgPool2d(ones(25), y, { ...p, countIncludePad: true, divisorOverride: 2 });
  assert.equal(Array.from(y), [2, 3, 2, 3, 4.5, 3, 2, 3, 2]);
});

test('avgPool2d in ceil mode: a window past the padded input counts only up to H + pad', () => {
  // 4×4 ones, 3×3 s2 p1, ceil mode gives 3×3 outputs. The last window starts at row 3 and is cut at row 5 = H + pad:
  // it spans 2 padded rows of which 1 is real, so with padding counted its divisor has a 2 where a 3 would be.
  const p = { ...pool3s2p1, H: 4, W: 4, OH: 3, OW: 3 };
  const y = new Float64Array(9);
  avgPool2d(ones(16), y, { ...p, countIncludePad: true });
  const expected = [4 / 9, 6 / 9, 2 / 6, 6 / 9, 9 / 9, 3 / 6, 2 / 6, 3 / 6, 1 / 4];
  y.forEach((v, i) => assert.ok(Math.abs(v - expected[i]) < 1e-15, `output ${i}: ${v} vs ${expected[i]}`));
});

test('avgPool2dBackward spreads dy / divisor over each clipped window', () => {
  // 1×3 input, kernel 1×2, stride 1, padding 1 along W, counting padding: windows {pad, 0}, {0, 1}, {1, 2}, {2, pad}.
  const p = { ...unitPool, H: 1, W: 3, OH: 1, OW: 4, kH: 1, kW: 2, strideH: 1, strideW: 1, padH: 0, padW: 1, countIncludePad: true };
  const dx = new Float64Array(3);
  avgPool2dBackward(new Float64Array([2, 4, 6, 8]), dx, p);
  assert.equal(Array.from(dx), [1 + 2, 2 + 3, 3 + 4]);
});

test('adaptiveAvgPool2d uses windows ⌊i·H/OH⌋ … ⌈(i+1)·H/OH⌉', () => {
  // H = 5 → OH = 3: rows [0, 2), [1, 4), [3, 5); W = 1 → OW = 1.
  const y = new Float64Array(3);
  adaptiveAvgPool2d(new Float64Array([1, 2, 3, 4, 5]), y, { N: 1, C: 1, H: 5, W: 1, OH: 3, OW: 1 });
  assert.equal(Array.from(y), [1.5, 3, 4.5]);
});

test.run();
