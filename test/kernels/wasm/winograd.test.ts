/**
 * Winograd F(2×2, 3×3) convolutions (kernels/wasm/winograd.ts) against the reference loops of kernels/cpu, on
 * random sizes (odd and even, down to 1×1, channel counts that do not fill a vector) with the size and channel
 * thresholds lowered to 1, on 1, 2 and 3 threads; and the thresholds themselves. Outputs start as NaN.
 * Tolerance: the float32 bound of helpers.ts (2·(terms + 2)·u·S), normwise and widened for the transforms:
 * - normwise: S is the largest magnitude over the output's plane (an (n, k) plane of y, an (n, c) plane of dx, a
 *   3×3 filter of dw). Winograd's error is normwise, not elementwise: an output that is exactly 0 in the plain sum
 *   (a filter tap that only ever sees padding) comes out of transformed values that cancel only in exact
 *   arithmetic;
 * - terms + TRANSFORM_ROUNDINGS: each transform adds a few roundings before and after the gemm's sums;
 * - times GROWTH: the transforms add up to 4 values (|Bᵀ·d·B| ≤ 4·max|d|) and G's rows sum to 2 in magnitude, so
 *   the intermediate sums are up to about 4× the plain magnitude.
 * Measured: the worst error was 0.06–0.2 of this tolerance over eight runs (the first test prints it); without the
 * widening, a 1×1 image's filter gradient, whose 8 padding taps are pure cancellation, failed the plain bound.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import {
  conv2dBackwardInputRef, conv2dBackwardWeightRef, conv2dRef, type Conv2dParams,
} from '../../../kernels/cpu/conv2d.ts';
import { conv2dBackwardInputWasm, conv2dBackwardWeightWasm, conv2dWasm, type ConvOptions } from '../../../kernels/wasm/conv2d.ts';
import { WasmRuntime } from '../../../kernels/wasm/runtime.ts';
import { winogradApplies } from '../../../kernels/wasm/winograd.ts';
import { abs64, assertClose, randomF32, seeded, wasmOrSkip } from './helpers.ts';

const always: ConvOptions = { winogradMinChannels: 1, winogradMinSize: 1 };

function params(N: number, C: number, K: number, H: number, W: number): Conv2dParams {
  return { N, C, K, H, W, R: 3, S: 3, OH: H, OW: W, strideH: 1, strideW: 1, padH: 1, padW: 1, dilationH: 1, dilationW: 1, groups: 1 };
}

const GROWTH = 2;
const TRANSFORM_ROUNDINGS = 4;
let worst = 0;

function check(p: Conv2dParams, seed: number, opts: ConvOptions): void {
  const rand = seeded(seed);
  const nx = p.N * p.C * p.H * p.W, nw = p.K * p.C * 9, ny = p.N * p.K * p.H * p.W;
  const x = randomF32(nx, rand), w = randomF32(nw, rand), dy = randomF32(ny, rand);
  const close = (what: string, got: Float32Array, want: Float64Array, mag: Float64Array, terms: number, plane: number) => {
    const bound = GROWTH * (terms + TRANSFORM_ROUNDINGS);
    const planeMax = Float64Array.from(mag, (_, i) => Math.max(...mag.subarray(i - (i % plane), i - (i % plane) + plane)));
    for (let i = 0; i < got.length; i++) {
      worst = Math.max(worst, Math.abs(got[i] - want[i]) / (2 * (bound + 2) * 2 ** -24 * planeMax[i] || 1));
    }
    assertClose(`${what} ${JSON.stringify(p)}`, got, want, planeMax, bound);
  };
  const y = new Float32Array(ny).fill(NaN), yRef = new Float64Array(ny), yMag = new Float64Array(ny);
  conv2dWasm(x, w, y, p, opts);
  conv2dRef(x, w, yRef, p);
  conv2dRef(abs64(x), abs64(w), yMag, p);
  close('forward', y, yRef, yMag, p.C * 9, p.H * p.W);
  const dx = new Float32Array(nx).fill(NaN), dxRef = new Float64Array(nx), dxMag = new Float64Array(nx);
  conv2dBackwardInputWasm(dy, w, dx, p, opts);
  conv2dBackwardInputRef(dy, w, dxRef, p);
  conv2dBackwardInputRef(abs64(dy), abs64(w), dxMag, p);
  close('backward input', dx, dxRef, dxMag, p.K * 9, p.H * p.W);
  const dw = new Float32Array(nw).fill(NaN), dwRef = new Float64Array(nw), dwMag = new Float64Array(nw);
  conv2dBackwardWeightWasm(x, dy, dw, p, opts);
  conv2dBackwardWeightRef(x, dy, dwRef, p);
  conv2dBackwardWeightRef(abs64(x), abs64(dy), dwMag, p);
  close('backward weight', dw, dwRef, dwMag, p.N * p.H * p.W, 9);
}

const sizes = fc.record({
  N: fc.integer({ min: 1, max: 3 }), C: fc.integer({ min: 1, max: 9 }), K: fc.integer({ min: 1, max: 9 }),
  H: fc.integer({ min: 1, max: 13 }), W: fc.integer({ min: 1, max: 13 }),
});

test('Winograd conv passes == reference on random sizes, 1 to 3 threads', () => {
  if (!wasmOrSkip('wasm winograd')) return;
  const runtimes = [undefined, new WasmRuntime({ threads: 2 }), new WasmRuntime({ threads: 3 })];
  fc.assert(fc.property(sizes, fc.nat(), fc.constantFrom(0, 1, 2), ({ N, C, K, H, W }, seed, r) => {
    check(params(N, C, K, H, W), seed, { ...always, runtime: runtimes[r] });
  }), { numRuns: 150 });
  // larger: more than one gemm block along each dimension, and tiles in several vector groups per row
  check(params(2, 37, 300, 18, 21), 7, always);
  check(params(3, 300, 20, 9, 10), 8, { ...always, runtime: runtimes[1] });
  for (const rt of runtimes) rt?.pool()?.close();
  console.log(`  worst error / tolerance: ${worst.toFixed(2)}`);
});

test('Winograd takes 3×3 stride-1 same-size convolutions with enough channels and size, and nothing else', () => {
  const p = params(2, 16, 16, 4, 4);
  assert.ok(winogradApplies(p));
  assert.not.ok(winogradApplies({ ...p, C: 15 }), 'too few input channels');
  assert.not.ok(winogradApplies({ ...p, H: 3, OH: 3 }), 'too few rows');
  assert.not.ok(winogradApplies({ ...p, groups: 2 }), 'grouped');
  assert.not.ok(winogradApplies({ ...p, strideH: 2, OH: 2 }), 'strided');
  assert.not.ok(winogradApplies({ ...p, padW: 0, OW: 2 }), 'unpadded');
  assert.not.ok(winogradApplies({ ...p, dilationH: 2, padH: 2 }), 'dilated');
  assert.not.ok(winogradApplies({ ...p, R: 1, S: 1, padH: 0, padW: 0 }), '1×1');
});

test.run();
