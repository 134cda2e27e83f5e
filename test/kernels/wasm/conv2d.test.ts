/**
 * The wasm conv2d passes (im2col + SIMD gemm, the 1×1 shortcut, the per-output-position gemms of tiny maps, the
 * depthwise f32x4 kernels) against the reference loops of kernels/cpu on random shapes: dense, grouped, depthwise,
 * depthwise with a channel multiplier; stride, padding, dilation, output sizes off by one (transposed convolutions
 * pass sizes with output padding), and fixed shapes that take each path. Outputs start as NaN so an element the
 * kernel forgets shows up.
 * Tolerance (helpers.ts): float32 sums of at most T = Cg·R·S + Kg·R·S + N·OH·OW products per output.
 */
import { test } from 'uvu';
import fc from 'fast-check';
import {
  conv2dBackwardInputRef, conv2dBackwardWeightRef, conv2dRef, type Conv2dParams,
} from '../../../kernels/cpu/conv2d.ts';
import {
  conv2dBackwardInputWasm, conv2dBackwardWeightWasm, conv2dWasm, type ConvOptions,
} from '../../../kernels/wasm/conv2d.ts';
import { WasmRuntime } from '../../../kernels/wasm/runtime.ts';
import { abs64, assertClose, randomF32, seeded, wasmOrSkip } from './helpers.ts';
import { convParamsArb } from '../../helpers/conv_shapes.ts';

const shapes = convParamsArb({ channelsPerGroup: 4, outPerGroup: 5, H: 11, W: 21, kernel: 7, pad: 3, kinds: ['dense', 'grouped', 'depthwise', 'depthwise', 'multiplier'], stride: fc.constantFrom(1, 1, 2, 3) });

const unit = { strideH: 1, strideW: 1, dilationH: 1, dilationW: 1 };
/** Shapes for each path: 1×1 shortcut and near-misses, 3×3 with more channels than a tile, depthwise 7×7 wider
 *  than one 16-column register tile, a depthwise filter wider than 4 taps, padding past the filter's reach. */
const namedShapes: Conv2dParams[] = [
  { N: 2, C: 5, H: 6, W: 7, K: 3, R: 1, S: 1, OH: 6, OW: 7, padH: 0, padW: 0, groups: 1, ...unit },
  { N: 2, C: 5, H: 6, W: 7, K: 3, R: 1, S: 1, OH: 5, OW: 7, padH: 0, padW: 0, groups: 1, ...unit },
  { N: 2, C: 6, H: 6, W: 7, K: 4, R: 1, S: 1, OH: 3, OW: 4, padH: 0, padW: 0, groups: 2, ...unit, strideH: 2, strideW: 2 },
  { N: 2, C: 19, H: 13, W: 11, K: 35, R: 3, S: 3, OH: 13, OW: 11, padH: 1, padW: 1, groups: 1, ...unit },
  { N: 2, C: 6, H: 19, W: 37, K: 6, R: 7, S: 7, OH: 19, OW: 37, padH: 3, padW: 3, groups: 6, ...unit },
  { N: 1, C: 3, H: 5, W: 12, K: 3, R: 3, S: 11, OH: 5, OW: 12, padH: 1, padW: 5, groups: 3, ...unit },
  { N: 1, C: 2, H: 4, W: 5, K: 2, R: 3, S: 3, OH: 8, OW: 9, padH: 4, padW: 4, groups: 2, ...unit },
  { N: 1, C: 4, H: 9, W: 9, K: 4, R: 4, S: 4, OH: 18, OW: 18, padH: 2, padW: 2, groups: 1, ...unit },
  { N: 1, C: 6, H: 10, W: 9, K: 9, R: 3, S: 2, OH: 4, OW: 7, strideH: 2, strideW: 1, padH: 1, padW: 2, dilationH: 2, dilationW: 2, groups: 3 },
];

function check(p: Conv2dParams, seed: number, opts: ConvOptions = {}): void {
  const rand = seeded(seed);
  const nx = p.N * p.C * p.H * p.W, nw = p.K * (p.C / p.groups) * p.R * p.S, ny = p.N * p.K * p.OH * p.OW;
  const x = randomF32(nx, rand), w = randomF32(nw, rand), dy = randomF32(ny, rand);
  const terms = (p.C / p.groups) * p.R * p.S + (p.K / p.groups) * p.R * p.S + p.N * p.OH * p.OW;
  const what = (pass: string) => `${pass} ${JSON.stringify(p)}`;

  const y = new Float32Array(ny).fill(NaN), yRef = new Float64Array(ny), yMag = new Float64Array(ny);
  conv2dWasm(x, w, y, p, opts);
  conv2dRef(x, w, yRef, p);
  conv2dRef(abs64(x), abs64(w), yMag, p);
  assertClose(what('forward'), y, yRef, yMag, terms);

  const dx = new Float32Array(nx).fill(NaN), dxRef = new Float64Array(nx), dxMag = new Float64Array(nx);
  conv2dBackwardInputWasm(dy, w, dx, p, opts);
  conv2dBackwardInputRef(dy, w, dxRef, p);
  conv2dBackwardInputRef(abs64(dy), abs64(w), dxMag, p);
  assertClose(what('backward input'), dx, dxRef, dxMag, terms);

  const dw = new Float32Array(nw).fill(NaN), dwRef = new Float64Array(nw), dwMag = new Float64Array(nw);
  conv2dBackwardWeightWasm(x, dy, dw, p, opts);
  conv2dBackwardWeightRef(x, dy, dwRef, p);
  conv2dBackwardWeightRef(abs64(x), abs64(dy), dwMag, p);
  assertClose(what('backward weight'), dw, dwRef, dwMag, terms);
}

/**
 * One image per gemm: batching turned off, since the random shapes here all have few positions per image; and
 * im2col for the 3×3 shapes that Winograd would take (winograd.test.ts covers those).
 */
const perImage: ConvOptions = { batchMaxPositions: 0, winogradMinChannels: Infinity, positionsMaxOutputs: 0 };

test('wasm conv2d passes == reference on random shapes', () => {
  if (!wasmOrSkip('wasm conv2d random shapes')) return;
  fc.assert(fc.property(shapes, fc.nat(), (p, seed) => check(p, seed, perImage)), { numRuns: 150 });
});

test('wasm conv2d passes == reference on shapes that take each path', () => {
  if (!wasmOrSkip('wasm conv2d named shapes')) return;
  namedShapes.forEach((p, i) => check(p, 1000 + i, perImage));
});

/**
 * Images side by side in one gemm (conv2d_batched.ts), as by default for these sizes; chunks of a few images
 * (chunkColumns down to one image's worth) so that several chunks and a last partial one occur; on the default
 * runtime and on runtimes of 2 and 3 threads, which split each chunk's images.
 */
test('wasm conv2d passes == reference with images batched into one gemm', () => {
  if (!wasmOrSkip('wasm conv2d batched images')) return;
  const runtimes = [undefined, new WasmRuntime({ threads: 2 }), new WasmRuntime({ threads: 3 })];
  const arb = fc.tuple(shapes, fc.integer({ min: 2, max: 7 })).map(([p, N]) => ({ ...p, N }));
  fc.assert(fc.property(arb, fc.nat(), fc.constantFrom(0, 1, 2), fc.integer({ min: 1, max: 600 }), (p, seed, r, chunkColumns) => {
    check(p, seed, { runtime: runtimes[r], chunkColumns, positionsMaxOutputs: 0 });
  }), { numRuns: 120 });
  for (const [i, p] of namedShapes.entries()) check({ ...p, N: 5 }, 3000 + i, { runtime: runtimes[1], chunkColumns: 2 * p.OH * p.OW, positionsMaxOutputs: 0 });
  for (const rt of runtimes) rt?.pool()?.close();
});

/**
 * Images split over threads (each thread's program: im2col, packing, gemm blocks, col2im), on a runtime of 2 and
 * of 3 threads, whatever the machine's core count, with the work threshold at 0 so that small shapes take it too.
 */
test('wasm conv2d passes == reference with images split over threads', () => {
  if (!wasmOrSkip('wasm conv2d image threads')) return;
  const runtimes = [new WasmRuntime({ threads: 2 }), new WasmRuntime({ threads: 3 })];
  const arb = fc.tuple(shapes, fc.integer({ min: 2, max: 7 })).map(([p, N]) => ({ ...p, N }));
  fc.assert(fc.property(arb, fc.nat(), fc.constantFrom(0, 1), (p, seed, r) => {
    check(p, seed, { runtime: runtimes[r], minImageParallelWork: 0, ...perImage });
  }), { numRuns: 80 });
  for (const [i, p] of namedShapes.entries()) check({ ...p, N: 4 }, 2000 + i, { runtime: runtimes[0], minImageParallelWork: 0, ...perImage });
  for (const rt of runtimes) rt.pool()?.close();
});

/**
 * One gemm per output position over the taps inside the image (conv2d_positions.ts), for every output size and
 * image count here (the thresholds lifted), on the default runtime and on runtimes of 2 and 3 threads. Shapes
 * with groups fall through to the other paths. The named ones: more than one 256-deep slice of channels and an
 * odd number of rows (the packing's single-row strip, a partial MC block), at the sizes it serves by default.
 */
test('wasm conv2d passes == reference with one gemm per output position', () => {
  if (!wasmOrSkip('wasm conv2d per output position')) return;
  const runtimes = [undefined, new WasmRuntime({ threads: 2 }), new WasmRuntime({ threads: 3 })];
  const all: ConvOptions = { positionsMaxOutputs: Infinity, positionsMinImages: 1, winogradMinChannels: Infinity };
  const arb = fc.tuple(shapes, fc.integer({ min: 1, max: 20 })).map(([p, N]) => ({ ...p, N }));
  fc.assert(fc.property(arb, fc.nat(), fc.constantFrom(0, 1, 2), (p, seed, r) => {
    check(p, seed, { runtime: runtimes[r], ...all });
  }), { numRuns: 150 });
  for (const [i, p] of namedShapes.entries()) check({ ...p, N: 9 }, 4000 + i, { runtime: runtimes[1], ...all });
  const square = (H: number, C: number, K: number, stride: number, R: number, pad: number): Conv2dParams => {
    const OH = Math.floor((H + 2 * pad - R) / stride) + 1;
    return { N: 9, C, H, W: H, K, R, S: R, OH, OW: OH, padH: pad, padW: pad, groups: 1, ...unit, strideH: stride, strideW: stride };
  };
  for (const [i, p] of [square(2, 300, 133, 1, 3, 1), square(4, 37, 261, 2, 3, 1), square(1, 515, 7, 1, 3, 1), square(4, 9, 11, 2, 1, 0)].entries()) {
    check(p, 5000 + i, { runtime: runtimes[i % 3] });
  }
  for (const rt of runtimes) rt?.pool()?.close();
});

test('Float64Array arguments go to the JS kernels and still match the reference', () => {
  const p = namedShapes[3];
  const rand = seeded(5);
  const x = Float64Array.from(randomF32(p.N * p.C * p.H * p.W, rand)), w = Float64Array.from(randomF32(p.K * p.C * 9, rand));
  const y = new Float64Array(p.N * p.K * p.OH * p.OW), yRef = new Float64Array(y.length);
  conv2dWasm(x, w, y, p);
  conv2dRef(x, w, yRef, p);
  for (let i = 0; i < y.length; i++) if (Math.abs(y[i] - yRef[i]) > 1e-12) throw new Error(`float64 conv [${i}]`);
});

test.run();
