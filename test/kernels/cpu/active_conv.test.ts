/**
 * Active-site conv kernels against their reference twins (the dense reference loops restricted to the sites), on
 * random shapes (dense, grouped, depthwise), random site subsets (none, some, all) and both float types.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import {
  activeConv2d, activeConv2dRef, activeConv2dBackwardInput, activeConv2dBackwardInputRef, activeConv2dBackwardWeight,
  activeConv2dBackwardWeightRef,
} from '../../../kernels/cpu/active_conv.ts';
import type { Conv2dParams } from '../../../kernels/cpu/conv2d.ts';
import type { FloatArray } from '../../../src/tensor/dtype.ts';

const caseArb = fc.record({
  N: fc.integer({ min: 1, max: 2 }),
  kind: fc.constantFrom('dense', 'grouped', 'depthwise'),
  perGroup: fc.integer({ min: 1, max: 3 }),
  outPerGroup: fc.integer({ min: 1, max: 3 }),
  H: fc.integer({ min: 2, max: 9 }), W: fc.integer({ min: 2, max: 9 }),
  R: fc.integer({ min: 1, max: 5 }), S: fc.integer({ min: 1, max: 5 }),
  stride: fc.integer({ min: 1, max: 2 }), pad: fc.integer({ min: 0, max: 2 }), dilation: fc.integer({ min: 1, max: 2 }),
  keep: fc.double({ min: 0, max: 1, noNaN: true }),
  seed: fc.nat(),
  f32: fc.boolean(),
});

function random(n: number, seed: number, f32: boolean): FloatArray {
  const out = f32 ? new Float32Array(n) : new Float64Array(n);
  let s = (seed * 2654435761 + 1) >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    out[i] = (s / 4294967296) * 2 - 1;
  }
  return out;
}

function near(got: FloatArray, want: FloatArray, f32: boolean, what: string): void {
  let scale = 1;
  for (const v of want) scale = Math.max(scale, Math.abs(v));
  // float64: both sides accumulate in double, only the order differs; float32: one rounding of each result
  const tol = (f32 ? 1e-6 : 1e-13) * scale;
  for (let i = 0; i < want.length; i++) {
    if (Math.abs(got[i] - want[i]) > tol) assert.unreachable(`${what}[${i}]: ${got[i]} vs ${want[i]}`);
  }
}

test('active-site conv: forward and both backward passes equal the dense reference restricted to the sites', () => {
  fc.assert(fc.property(caseArb, (c) => {
    const groups = c.kind === 'dense' ? 1 : c.kind === 'grouped' ? 2 : 2 * c.perGroup;
    const C = c.kind === 'depthwise' ? groups : groups * c.perGroup;
    const K = c.kind === 'depthwise' ? groups : groups * c.outPerGroup;
    const OH = Math.floor((c.H + 2 * c.pad - c.dilation * (c.R - 1) - 1) / c.stride) + 1;
    const OW = Math.floor((c.W + 2 * c.pad - c.dilation * (c.S - 1) - 1) / c.stride) + 1;
    if (OH < 1 || OW < 1) return;
    const p: Conv2dParams = {
      N: c.N, C, H: c.H, W: c.W, K, R: c.R, S: c.S, OH, OW, strideH: c.stride, strideW: c.stride,
      padH: c.pad, padW: c.pad, dilationH: c.dilation, dilationW: c.dilation, groups,
    };
    const keepers = random(c.N * OH * OW, c.seed + 9, false);
    const sites = Int32Array.from([...keepers.keys()].filter((i) => (keepers[i] + 1) / 2 < c.keep));
    const x = random(c.N * C * c.H * c.W, c.seed, c.f32);
    const w = random(K * (C / groups) * c.R * c.S, c.seed + 1, c.f32);
    const dy = random(c.N * K * OH * OW, c.seed + 2, c.f32);
    const alloc = (n: number) => (c.f32 ? new Float32Array(n) : new Float64Array(n));
    const [y, yRef] = [alloc(dy.length), alloc(dy.length)];
    activeConv2d(x, w, y, p, sites);
    activeConv2dRef(x, w, yRef, p, sites);
    near(y, yRef, c.f32, 'y');
    const [dx, dxRef] = [alloc(x.length), alloc(x.length)];
    activeConv2dBackwardInput(dy, w, dx, p, sites);
    activeConv2dBackwardInputRef(dy, w, dxRef, p, sites);
    near(dx, dxRef, c.f32, 'dx');
    const [dw, dwRef] = [alloc(w.length), alloc(w.length)];
    activeConv2dBackwardWeight(x, dy, dw, p, sites);
    activeConv2dBackwardWeightRef(x, dy, dwRef, p, sites);
    near(dw, dwRef, c.f32, 'dw');
  }), { numRuns: 150 });
});

test('more sites than one block (512): the blocked gather covers them all', () => {
  const p: Conv2dParams = { N: 2, C: 3, H: 24, W: 24, K: 4, R: 3, S: 3, OH: 24, OW: 24, strideH: 1, strideW: 1, padH: 1, padW: 1, dilationH: 1, dilationW: 1, groups: 1 };
  const sites = Int32Array.from({ length: 900 }, (_, i) => i * 1 + (i > 450 ? 100 : 0));
  const x = random(2 * 3 * 24 * 24, 1, false), w = random(4 * 3 * 9, 2, false), dy = random(2 * 4 * 24 * 24, 3, false);
  const y = new Float64Array(dy.length), yRef = new Float64Array(dy.length);
  activeConv2d(x, w, y, p, sites);
  activeConv2dRef(x, w, yRef, p, sites);
  near(y, yRef, false, 'y');
  const dw = new Float64Array(w.length), dwRef = new Float64Array(w.length);
  activeConv2dBackwardWeight(x, dy, dw, p, sites);
  activeConv2dBackwardWeightRef(x, dy, dwRef, p, sites);
  near(dw, dwRef, false, 'dw');
});

test.run();
