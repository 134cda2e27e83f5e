/**
 * gpu.js conv2d and its backward passes against the reference twins, per gpu.js mode present: dense, grouped,
 * depthwise and channel-multiplier shapes with stride, padding and dilation, OH/OW one off the usual size
 * (transposed convolutions pass sizes with output padding, where (H + 2p − d·(R−1) − 1) is not a multiple of
 * the stride); without sites against kernels/cpu/conv2d.ts's *Ref, with sites (unsorted, possibly empty)
 * against kernels/cpu/active_conv.ts's *Ref. Tolerance: assertClose's float32 summation bound, terms = the
 * number of products each output sums.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { conv2dRef, conv2dBackwardInputRef, conv2dBackwardWeightRef, type Conv2dParams } from '../../../kernels/cpu/conv2d.ts';
import { activeConv2dRef, activeConv2dBackwardInputRef, activeConv2dBackwardWeightRef } from '../../../kernels/cpu/active_conv.ts';
import * as gpuConv from '../../../kernels/gpu/conv.ts';
import { affine } from '../../../kernels/gpu/elementwise.ts';
import type { GpuArray, GpuIn, GpuRuntime } from '../../../kernels/gpu/runtime.ts';
import { abs64, assertClose, forEachMode, randomF32, seeded } from './helpers.ts';
import { convParamsArb } from '../../helpers/conv_shapes.ts';

const shapes = convParamsArb({ channelsPerGroup: 3, outPerGroup: 3, H: 8, W: 8, kernel: 5, pad: 2 });

/** Which output positions count: all (null), none, or a random unsorted subset. */
type SiteChoice = 'all' | 'none' | 'some';

function drawSites(p: Conv2dParams, choice: SiteChoice, rand: () => number): Int32Array | null {
  if (choice === 'all') return null;
  if (choice === 'none') return new Int32Array(0);
  const picked: number[] = [];
  for (let i = 0; i < p.N * p.OH * p.OW; i++) if (rand() < 0.5) picked.push(i);
  for (let i = picked.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [picked[i], picked[j]] = [picked[j], picked[i]];
  }
  return Int32Array.from(picked);
}

/** The three reference passes (doubles), dense or at sites. */
function reference(p: Conv2dParams, sites: Int32Array | null, x: Float64Array, w: Float64Array, dy: Float64Array) {
  const y = new Float64Array(p.N * p.K * p.OH * p.OW);
  const dx = new Float64Array(p.N * p.C * p.H * p.W);
  const dw = new Float64Array(w.length);
  if (sites) {
    activeConv2dRef(x, w, y, p, sites);
    activeConv2dBackwardInputRef(dy, w, dx, p, sites);
    activeConv2dBackwardWeightRef(x, dy, dw, p, sites);
  } else {
    conv2dRef(x, w, y, p);
    conv2dBackwardInputRef(dy, w, dx, p);
    conv2dBackwardWeightRef(x, dy, dw, p);
  }
  return { y, dx, dw };
}

/** A device copy of host values (x·1 + 0), so a pass reads a texture as it does inside a model. */
function onDevice(rt: GpuRuntime, v: Float32Array): GpuArray {
  return affine(rt, v, v.length, 1, 0);
}

function check(rt: GpuRuntime, p: Conv2dParams, choice: SiteChoice, seed: number, device: boolean): void {
  const rand = seeded(seed);
  const x = randomF32(p.N * p.C * p.H * p.W, rand);
  const w = randomF32(p.K * (p.C / p.groups) * p.R * p.S, rand);
  const dy = randomF32(p.N * p.K * p.OH * p.OW, rand);
  const sites = drawSites(p, choice, rand);
  const f64 = (a: Float32Array) => Float64Array.from(a);
  const want = reference(p, sites, f64(x), f64(w), f64(dy));
  const mag = reference(p, sites, abs64(x), abs64(w), abs64(dy));
  const what = `${JSON.stringify(p)} sites ${choice}`;
  const put = (v: Float32Array): GpuIn => (device && v.length > 0 ? onDevice(rt, v) : v);
  const [dx_, dw_, ddy] = [put(x), put(w), put(dy)];
  const y = gpuConv.conv2d(rt, dx_, dw_, p, sites);
  assertClose(`conv2d ${what}`, y.read(), want.y, mag.y, (p.C / p.groups) * p.R * p.S);
  const dx = gpuConv.conv2dBackwardInput(rt, ddy, dw_, p, sites);
  assertClose(`conv2dBackwardInput ${what}`, dx.read(), want.dx, mag.dx, (p.K / p.groups) * p.R * p.S);
  const dw = gpuConv.conv2dBackwardWeight(rt, dx_, ddy, p, sites);
  assertClose(`conv2dBackwardWeight ${what}`, dw.read(), want.dw, mag.dw, p.N * p.OH * p.OW);
  for (const a of [y, dx, dw, dx_, dw_, ddy]) if (!(a instanceof Float32Array)) a.dispose();
}

forEachMode('gpu conv2d and its backward passes equal the reference on random shapes, dense or at sites', (rt) => {
  fc.assert(fc.property(shapes, fc.constantFrom<SiteChoice>('all', 'some', 'some', 'none'), fc.integer(),
    (p, choice, seed) => check(rt, p, choice, seed, false)), { numRuns: 12 });
});

/** Fixed shapes: a transposed conv's (stride 2, output padding 1), a 7×7 depthwise, a dilated grouped conv. */
const named: Conv2dParams[] = [
  { N: 2, C: 3, H: 8, W: 7, K: 4, R: 3, S: 3, OH: 4, OW: 4, strideH: 2, strideW: 2, padH: 1, padW: 1, dilationH: 1, dilationW: 1, groups: 1 },
  { N: 1, C: 4, H: 9, W: 8, K: 4, R: 7, S: 7, OH: 9, OW: 8, strideH: 1, strideW: 1, padH: 3, padW: 3, dilationH: 1, dilationW: 1, groups: 4 },
  { N: 2, C: 4, H: 7, W: 9, K: 6, R: 3, S: 2, OH: 4, OW: 4, strideH: 1, strideW: 2, padH: 1, padW: 0, dilationH: 2, dilationW: 3, groups: 2 },
];

forEachMode('gpu conv2d: named shapes, inputs on the device, textures freed', (rt) => {
  const before = rt.liveTextures();
  named.forEach((p, i) => check(rt, p, i === 1 ? 'all' : 'some', 10 + i, true));
  assert.is(rt.liveTextures(), before);
});

forEachMode('gpu conv2d: a site outside the output is refused', (rt) => {
  const p = named[0];
  assert.throws(() => gpuConv.conv2d(rt, new Float32Array(p.N * p.C * p.H * p.W), new Float32Array(p.K * p.C * 9), p, new Int32Array([p.N * p.OH * p.OW])), /outside/);
  const y = gpuConv.conv2d(rt, new Float32Array(p.N * p.C * p.H * p.W), new Float32Array(p.K * p.C * 9), p, new Int32Array([0]));
  y.dispose();
});

test.run();
