/**
 * The Winograd convolutions against the reference loops of kernels/cpu: F(2×2, 3×3) and F(4×4, 3×3)
 * (kernels/wasm/winograd.ts) and the k4 s2 conv's four-phase F(3×3, 2×2) (winograd_k4s2.ts), on random sizes
 * (odd and even, down to 1×1, channel counts that do not fill a vector) with the size and channel thresholds
 * lowered, on 1, 2 and 3 threads, whole-tensor and chunked, F(2×2, 3×3)'s input gradient both ways; the vector filter transforms against their scalar
 * twins; and the thresholds themselves. Outputs start as NaN.
 * Tolerance: the float32 bound of helpers.ts, 2·(terms + 2)·u·S, with S the scale of the whole filter bank rather
 * than the plain sum's own magnitude. Winograd's error is normwise: each output is a combination of transformed
 * values that mix all 9 taps of a filter over the tile's 4×4 patch, cancelling in exact arithmetic to the taps
 * that apply. So where the plain sum only sees a few taps (a small image, mostly padding), its magnitude says
 * nothing of the rounding in the transformed values. S per output plane: y (n, k): Σ_{c,r,s} |w[k,c,r,s]| ·
 * max|x[n]|; dx (n, c): Σ_{k,r,s} |w[k,c,r,s]| · max|dy[n]|; dw (k, c): Σ_n Σ_pos |dy[n,k,pos]| · max|x[n,c]|.
 * Measured: the worst error was 0.17–0.34 of this tolerance over runs of both properties (each prints it);
 * measured against the plain sums' own magnitudes instead, errors reached 96 times that bound.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import {
  conv2dBackwardInputRef, conv2dBackwardWeightRef, conv2dRef, type Conv2dParams,
} from '../../../kernels/cpu/conv2d.ts';
import { conv2dBackwardInputWasm, conv2dBackwardWeightWasm, conv2dWasm, type ConvOptions } from '../../../kernels/wasm/conv2d.ts';
import { WasmRuntime } from '../../../kernels/wasm/runtime.ts';
import { F43, F43_MIN_SIZE, SAME_3X3, winogradApplies, winogradScheme } from '../../../kernels/wasm/winograd.ts';
import { K4S2, k4s2Applies } from '../../../kernels/wasm/winograd_k4s2.ts';
import { assertClose, randomF32, seeded, wasmOrSkip } from './helpers.ts';

const always: ConvOptions = { winogradMinChannels: 1, winogradMinSize: 1, winograd43MinSize: Infinity };
/** F(4×4, 3×3) from any size. */
const always43: ConvOptions = { ...always, winograd43MinSize: 1 };

function params(N: number, C: number, K: number, H: number, W: number): Conv2dParams {
  return { N, C, K, H, W, R: 3, S: 3, OH: H, OW: W, strideH: 1, strideW: 1, padH: 1, padW: 1, dilationH: 1, dilationW: 1, groups: 1 };
}

let worst = 0;

/** max |a| over each of the `count` planes of `size` elements. */
function planeMax(a: Float32Array, count: number, size: number): Float64Array {
  const out = new Float64Array(count);
  for (let q = 0; q < count; q++) for (let i = 0; i < size; i++) out[q] = Math.max(out[q], Math.abs(a[q * size + i]));
  return out;
}

function check(p: Conv2dParams, seed: number, opts: ConvOptions, factor = 1): void {
  const { N, C, K, H, W, OH, OW } = p;
  const rand = seeded(seed);
  const RS = p.R * p.S, HW = H * W, P = OH * OW;
  const nx = N * C * HW, nw = K * C * RS, ny = N * K * P;
  const x = randomF32(nx, rand), w = randomF32(nw, rand), dy = randomF32(ny, rand);
  const xMax = planeMax(x, N * C, HW), dyMax = planeMax(dy, N * K, P);
  const w1 = planeMax(Float32Array.from({ length: K * C }, (_, kc) => w.subarray(kc * RS, kc * RS + RS).reduce((s, v) => s + Math.abs(v), 0)), K * C, 1);
  const dySum = Float64Array.from({ length: N * K }, (_, nk) => dy.subarray(nk * P, nk * P + P).reduce((s, v) => s + Math.abs(v), 0));
  // the scale S of each output plane (see the header)
  const xMaxN = Float64Array.from({ length: N }, (_, n) => Math.max(0, ...xMax.subarray(n * C, n * C + C)));
  const dyMaxN = Float64Array.from({ length: N }, (_, n) => Math.max(0, ...dyMax.subarray(n * K, n * K + K)));
  const yS = new Float64Array(N * K), dxS = new Float64Array(N * C), dwS = new Float64Array(K * C);
  for (let n = 0; n < N; n++) {
    for (let k = 0; k < K; k++) {
      for (let c = 0; c < C; c++) {
        yS[n * K + k] += w1[k * C + c] * xMaxN[n];
        dxS[n * C + c] += w1[k * C + c] * dyMaxN[n];
        dwS[k * C + c] += dySum[n * K + k] * xMax[n * C + c];
      }
    }
  }
  const close = (what: string, got: Float32Array, want: Float64Array, scale: (i: number) => number, terms: number) => {
    const mag = Float64Array.from(got, (_, i) => factor * scale(i));
    for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]) / (2 * (terms + 2) * 2 ** -24 * mag[i] || 1));
    assertClose(`${what} ${JSON.stringify(p)}`, got, want, mag, terms);
  };
  const y = new Float32Array(ny).fill(NaN), yRef = new Float64Array(ny);
  conv2dWasm(x, w, y, p, opts);
  conv2dRef(x, w, yRef, p);
  close('forward', y, yRef, (i) => yS[Math.floor(i / P)], C * RS);
  const dx = new Float32Array(nx).fill(NaN), dxRef = new Float64Array(nx);
  conv2dBackwardInputWasm(dy, w, dx, p, opts);
  conv2dBackwardInputRef(dy, w, dxRef, p);
  close('backward input', dx, dxRef, (i) => dxS[Math.floor(i / HW)], K * RS);
  const dw = new Float32Array(nw).fill(NaN), dwRef = new Float64Array(nw);
  conv2dBackwardWeightWasm(x, dy, dw, p, opts);
  conv2dBackwardWeightRef(x, dy, dwRef, p);
  close('backward weight', dw, dwRef, (i) => dwS[Math.floor(i / RS)], N * P);
}

/** Tiles per chunk: Infinity runs whole-tensor stages; small chunks reach the chunked passes on small shapes
 * (chunks of tile rows within an image, or of whole images, depending on the image's tile count). */
const chunks = fc.constantFrom(Infinity, 1, 3, 8);

const sizes = fc.record({
  N: fc.integer({ min: 1, max: 3 }), C: fc.integer({ min: 1, max: 9 }), K: fc.integer({ min: 1, max: 9 }),
  H: fc.integer({ min: 1, max: 13 }), W: fc.integer({ min: 1, max: 13 }),
});

test('Winograd conv passes == reference on random sizes, 1 to 3 threads, whole-tensor and chunked', () => {
  if (!wasmOrSkip('wasm winograd')) return;
  const runtimes = [undefined, new WasmRuntime({ threads: 2 }), new WasmRuntime({ threads: 3 }), new WasmRuntime({ threads: 1 })];
  fc.assert(fc.property(sizes, fc.nat(), fc.constantFrom(0, 1, 2, 3), chunks, fc.boolean(), ({ N, C, K, H, W }, seed, r, chunk, scatter) => {
    check(params(N, C, K, H, W), seed, { ...always, runtime: runtimes[r], winogradChunkTiles: chunk, winogradScatterInputGrad: scatter });
  }), { numRuns: 400 });
  // larger: more than one gemm block along each dimension, and tiles in several vector groups per row
  check(params(2, 37, 300, 18, 21), 7, always);
  check(params(3, 300, 20, 9, 10), 8, { ...always, runtime: runtimes[1] });
  check(params(4, 20, 24, 30, 34), 11, { ...always, runtime: runtimes[1], winogradChunkTiles: 40 });
  for (const rt of runtimes) rt?.pool()?.close();
  console.log(`  worst error / tolerance: ${worst.toFixed(3)}`);
});

function paramsK4S2(N: number, C: number, K: number, OH: number, OW: number): Conv2dParams {
  return { N, C, K, H: 2 * OH, W: 2 * OW, R: 4, S: 4, OH, OW, strideH: 2, strideW: 2, padH: 1, padW: 1, dilationH: 1, dilationW: 1, groups: 1 };
}

/**
 * F(4×4, 3×3)'s tolerance, in units of the bound above: its transforms have larger entries (Bᵀ rows sum to 10 in
 * absolute value, Aᵀ's to 19, against 2 and 3 for F(2×2, 3×3)), so its rounding grows with them. Measured over
 * runs of the property: worst errors of 1.5–2.3 times the bound (F(2×2, 3×3): 0.17–0.34), so 0.19–0.29 of this.
 */
const F43_FACTOR = 8;

test('Winograd F(4×4, 3×3) conv passes == reference on random sizes, 1 to 3 threads, whole-tensor and chunked', () => {
  if (!wasmOrSkip('wasm winograd 4x4')) return;
  worst = 0;
  const runtimes = [undefined, new WasmRuntime({ threads: 2 }), new WasmRuntime({ threads: 3 }), new WasmRuntime({ threads: 1 })];
  fc.assert(fc.property(sizes, fc.nat(), fc.constantFrom(0, 1, 2, 3), chunks, ({ N, C, K, H, W }, seed, r, chunk) => {
    const p = params(N, C, K, H, W);
    assert.is(winogradScheme(p, always43), F43);
    check(p, seed, { ...always43, runtime: runtimes[r], winogradChunkTiles: chunk }, F43_FACTOR);
  }), { numRuns: 300 });
  // larger: more than one gemm block along each dimension, several vector groups of tiles per row, ragged edges
  check(params(2, 37, 300, 18, 21), 7, always43, F43_FACTOR);
  check(params(3, 300, 20, 9, 10), 8, { ...always43, runtime: runtimes[1] }, F43_FACTOR);
  check(params(4, 20, 24, 30, 34), 11, { ...always43, runtime: runtimes[1], winogradChunkTiles: 12 }, F43_FACTOR);
  for (const rt of runtimes) rt?.pool()?.close();
  console.log(`  worst error / tolerance: ${worst.toFixed(3)}`);
});

test('four-phase F(3×3, 2×2) of the k4 s2 p1 conv (the transposed conv) == reference on random sizes, 1 to 3 threads, whole-tensor and chunked', () => {
  if (!wasmOrSkip('wasm winograd k4s2')) return;
  worst = 0;
  const runtimes = [undefined, new WasmRuntime({ threads: 2 }), new WasmRuntime({ threads: 3 }), new WasmRuntime({ threads: 1 })];
  const phaseSizes = fc.record({
    N: fc.integer({ min: 1, max: 3 }), C: fc.integer({ min: 4, max: 11 }), K: fc.integer({ min: 4, max: 9 }),
    OH: fc.integer({ min: 1, max: 10 }), OW: fc.integer({ min: 1, max: 10 }),
  });
  fc.assert(fc.property(phaseSizes, fc.nat(), fc.constantFrom(0, 1, 2, 3), chunks, ({ N, C, K, OH, OW }, seed, r, chunk) => {
    const p = paramsK4S2(N, C, K, OH, OW);
    assert.ok(k4s2Applies(p, always));
    check(p, seed, { ...always, runtime: runtimes[r], winogradChunkTiles: chunk });
  }), { numRuns: 300 });
  // larger: several gemm blocks, tiles in several vector groups per row, channels not a multiple of 4
  check(paramsK4S2(2, 37, 300, 9, 13), 9, always);
  check(paramsK4S2(3, 70, 20, 12, 6), 10, { ...always, runtime: runtimes[1] });
  check(paramsK4S2(4, 20, 24, 15, 17), 12, { ...always, runtime: runtimes[1], winogradChunkTiles: 10 });
  for (const rt of runtimes) rt?.pool()?.close();
  console.log(`  worst error / tolerance: ${worst.toFixed(3)}`);
});

test('the four-phase scheme takes k4 s2 p1 convolutions of even sizes with enough channels and size, and nothing else', () => {
  const p = paramsK4S2(2, 16, 16, 6, 6);
  assert.ok(k4s2Applies(p));
  assert.is(winogradScheme(p), K4S2);
  assert.not.ok(k4s2Applies({ ...p, C: 15 }), 'too few input channels');
  assert.not.ok(k4s2Applies({ ...p, OH: 5, H: 10 }), 'too few rows');
  assert.ok(k4s2Applies({ ...p, OH: 3, H: 6 }, {}, 'weight'), 'the weight gradient gains from 3 rows');
  assert.not.ok(k4s2Applies({ ...p, OH: 2, H: 4 }, {}, 'weight'));
  assert.not.ok(k4s2Applies({ ...p, H: 11 }), 'odd input');
  assert.not.ok(k4s2Applies({ ...p, groups: 2 }), 'grouped');
  assert.not.ok(k4s2Applies({ ...p, strideH: 1, OH: 11 }), 'stride 1');
  assert.not.ok(k4s2Applies({ ...p, padW: 0, OW: 5 }), 'unpadded');
  assert.not.ok(k4s2Applies({ ...p, C: 3, K: 3 }, always), 'the filter transforms take 4 channels at a time');
  assert.is(winogradScheme(params(2, 16, 16, 4, 4)), SAME_3X3);
});

test('the f32x4 filter transforms equal their scalar twins bit for bit, on every split of the filters', () => {
  if (!wasmOrSkip('wasm winograd filters')) return;
  const rt = new WasmRuntime({ threads: 1 });
  const rand = seeded(3);
  for (const KC of [1, 3, 4, 5, 9, 37]) {
    const w = rt.alloc(9 * KC), dU = rt.alloc(16 * KC), a = rt.alloc(16 * KC), b = rt.alloc(16 * KC);
    rt.f32.set(randomF32(9 * KC, rand), w >>> 2);
    rt.f32.set(randomF32(16 * KC, rand), dU >>> 2);
    for (const [kc0, kc1] of [[0, KC], [0, Math.floor(KC / 2)], [Math.floor(KC / 2), KC]]) {
      for (const [vector, scalar, src, n] of [['wgFilter', 'wgFilterScalar', w, 16], ['wgFilterGrad', 'wgFilterGradScalar', dU, 9]] as const) {
        rt.f32.fill(NaN, a >>> 2, (a >>> 2) + 16 * KC);
        rt.f32.fill(NaN, b >>> 2, (b >>> 2) + 16 * KC);
        rt.kernels[vector](src, kc0, kc1, KC, a);
        rt.kernels[scalar](src, kc0, kc1, KC, b);
        const got = rt.f32.slice(a >>> 2, (a >>> 2) + n * KC), want = rt.f32.slice(b >>> 2, (b >>> 2) + n * KC);
        assert.ok(got.every((v, i) => Object.is(v, want[i])), `${vector} KC ${KC} [${kc0}, ${kc1})`);
      }
    }
  }
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
  assert.is(winogradScheme(p), SAME_3X3, 'F(2×2, 3×3) on small maps');
  assert.is(winogradScheme(params(2, 16, 16, F43_MIN_SIZE, F43_MIN_SIZE)), F43, 'F(4×4, 3×3) from F43_MIN_SIZE');
  assert.is(winogradScheme(params(2, 16, 16, F43_MIN_SIZE, F43_MIN_SIZE - 1)), SAME_3X3, 'both sides count');
  assert.is(winogradScheme(params(2, 16, 16, 32, 32), { winograd43MinSize: Infinity }), SAME_3X3, 'F(4×4, 3×3) turned off');
});

test.run();
