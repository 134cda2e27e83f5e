/**
 * The wasm active-site conv passes against the reference twins of kernels/cpu (the dense reference restricted to
 * the sites) on random shapes (dense, grouped, depthwise; depthwise with column dilation goes to the JS kernel and
 * is checked too), random site subsets (none, some, all, unsorted), more sites than one block, and ConvNeXt's 7×7.
 * Tolerance (helpers.ts): float32 sums of at most T = span + Kg·R·S + #sites products per output.
 */
import { test } from 'uvu';
import fc from 'fast-check';
import {
  activeConv2dBackwardInputRef, activeConv2dBackwardWeightRef, activeConv2dRef,
} from '../../../kernels/cpu/active_conv.ts';
import type { Conv2dParams } from '../../../kernels/cpu/conv2d.ts';
import {
  activeConv2dBackwardInputWasm, activeConv2dBackwardWeightWasm, activeConv2dWasm,
} from '../../../kernels/wasm/active_conv.ts';
import { abs64, assertClose, randomF32, seeded, wasmOrSkip } from './helpers.ts';

function check(p: Conv2dParams, sites: Int32Array, seed: number): void {
  const rand = seeded(seed);
  const nx = p.N * p.C * p.H * p.W, nw = p.K * (p.C / p.groups) * p.R * p.S, ny = p.N * p.K * p.OH * p.OW;
  const x = randomF32(nx, rand), w = randomF32(nw, rand), dy = randomF32(ny, rand);
  const terms = (p.C / p.groups) * p.R * p.S + (p.K / p.groups) * p.R * p.S + sites.length;
  const what = (pass: string) => `${pass} ${JSON.stringify(p)} (${sites.length} sites)`;

  const y = new Float32Array(ny).fill(NaN), yRef = new Float64Array(ny), yMag = new Float64Array(ny);
  activeConv2dWasm(x, w, y, p, sites);
  activeConv2dRef(x, w, yRef, p, sites);
  activeConv2dRef(abs64(x), abs64(w), yMag, p, sites);
  assertClose(what('forward'), y, yRef, yMag, terms);

  const dx = new Float32Array(nx).fill(NaN), dxRef = new Float64Array(nx), dxMag = new Float64Array(nx);
  activeConv2dBackwardInputWasm(dy, w, dx, p, sites);
  activeConv2dBackwardInputRef(dy, w, dxRef, p, sites);
  activeConv2dBackwardInputRef(abs64(dy), abs64(w), dxMag, p, sites);
  assertClose(what('backward input'), dx, dxRef, dxMag, terms);

  const dw = new Float32Array(nw).fill(NaN), dwRef = new Float64Array(nw), dwMag = new Float64Array(nw);
  activeConv2dBackwardWeightWasm(x, dy, dw, p, sites);
  activeConv2dBackwardWeightRef(x, dy, dwRef, p, sites);
  activeConv2dBackwardWeightRef(abs64(x), abs64(dy), dwMag, p, sites);
  assertClose(what('backward weight'), dw, dwRef, dwMag, terms);
}

const caseArb = fc.record({
  N: fc.integer({ min: 1, max: 2 }),
  kind: fc.constantFrom('dense', 'dense', 'grouped', 'depthwise'),
  perGroup: fc.integer({ min: 1, max: 5 }),
  outPerGroup: fc.integer({ min: 1, max: 20 }),
  H: fc.integer({ min: 2, max: 10 }), W: fc.integer({ min: 2, max: 10 }),
  R: fc.integer({ min: 1, max: 5 }), S: fc.integer({ min: 1, max: 5 }),
  strideH: fc.integer({ min: 1, max: 2 }), strideW: fc.integer({ min: 1, max: 2 }),
  pad: fc.integer({ min: 0, max: 2 }), dilation: fc.integer({ min: 1, max: 2 }),
  keep: fc.constantFrom(0, 0.3, 0.6, 1),
  shuffle: fc.boolean(),
  seed: fc.nat(),
});

test('wasm active-site conv passes == reference restricted to the sites, random shapes and site subsets', () => {
  if (!wasmOrSkip('wasm active-site conv')) return;
  fc.assert(fc.property(caseArb, (c) => {
    const groups = c.kind === 'dense' ? 1 : c.kind === 'grouped' ? 2 : 2 * c.perGroup;
    const C = c.kind === 'depthwise' ? groups : groups * c.perGroup;
    const K = c.kind === 'depthwise' ? groups : groups * c.outPerGroup;
    const OH = Math.floor((c.H + 2 * c.pad - c.dilation * (c.R - 1) - 1) / c.strideH) + 1;
    const OW = Math.floor((c.W + 2 * c.pad - c.dilation * (c.S - 1) - 1) / c.strideW) + 1;
    if (OH < 1 || OW < 1) return;
    const p: Conv2dParams = {
      N: c.N, C, H: c.H, W: c.W, K, R: c.R, S: c.S, OH, OW, strideH: c.strideH, strideW: c.strideW,
      padH: c.pad, padW: c.pad, dilationH: c.dilation, dilationW: c.dilation, groups,
    };
    const rand = seeded(c.seed + 17);
    const all = [...Array(c.N * OH * OW).keys()].filter(() => rand() < c.keep);
    if (c.shuffle) all.sort(() => rand() - 0.5);
    check(p, Int32Array.from(all), c.seed);
  }), { numRuns: 150 });
});

test('more sites than one block (512), SparK-like 3×3 with 64 output channels; sites split over the threads', () => {
  if (!wasmOrSkip('wasm active-site conv, many sites')) return;
  const p: Conv2dParams = {
    N: 2, C: 8, H: 24, W: 24, K: 64, R: 3, S: 3, OH: 24, OW: 24, strideH: 1, strideW: 1, padH: 1, padW: 1,
    dilationH: 1, dilationW: 1, groups: 1,
  };
  const rand = seeded(3);
  const sites = Int32Array.from([...Array(2 * 24 * 24).keys()].filter(() => rand() < 0.7));
  check(p, sites, 4);
  // enough work to split the sites over the threads (sites·span·Kg ≥ 2²¹), several blocks per thread, 2 groups
  const q: Conv2dParams = { ...p, N: 4, C: 16, groups: 2 };
  check(q, Int32Array.from([...Array(4 * 24 * 24).keys()].filter(() => rand() < 0.7)), 5);
});

test('depthwise 7×7 (ConvNeXt-like), stride 1 and 2, at 60% of the sites: the wasm depthwise path', () => {
  if (!wasmOrSkip('wasm active-site depthwise')) return;
  for (const stride of [1, 2]) {
    const OH = stride === 1 ? 14 : 7;
    const p: Conv2dParams = {
      N: 2, C: 12, H: 14, W: 14, K: 12, R: 7, S: 7, OH, OW: OH, strideH: stride, strideW: stride, padH: 3, padW: 3,
      dilationH: 1, dilationW: 1, groups: 12,
    };
    const rand = seeded(8 + stride);
    check(p, Int32Array.from([...Array(2 * OH * OH).keys()].filter(() => rand() < 0.6)), 9 + stride);
  }
});

test.run();
