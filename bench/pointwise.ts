/**
 * The pointwise passes of a SparK step, reference loops (kernels/cpu) against the wasm SIMD kernels
 * (kernels/wasm/elementwise.ts, norm.ts), float32, in one run: elementwise ops on a 16×64×48×48 tensor (the same
 * shape, a per-channel (1, 64, 1, 1) operand, a (16, 1, 48, 48) mask, ReLU and its derivative map) and the
 * batch-norm channel passes at 16×128×24×24. The wasm side is timed split over the default runtime's threads and
 * on the calling thread only (the default, see kernels/wasm/elementwise.ts); its memory is shared either way. Best of several runs after a warm-up (bench/timing.ts).
 * Left out: printing (bench/run.ts does it).
 */
import { binary, unary } from '../kernels/cpu/elementwise.ts';
import { channelNormalize, channelNormalizeBackward, channelStats } from '../kernels/cpu/norm.ts';
import { binaryWasm, unaryWasm, type PointwiseOptions } from '../kernels/wasm/elementwise.ts';
import { channelNormalizeBackwardWasm, channelNormalizeWasm, channelStatsWasm } from '../kernels/wasm/norm.ts';
import { wasmAvailable } from '../kernels/wasm/runtime.ts';
import { bestMs, randomFloat32 } from './timing.ts';

export type PointwiseRow = { name: string; shape: string; refMs: number; wasmMs: number; wasm1Ms: number };

const threaded: PointwiseOptions = { minParallel: 0 };
const oneThread: PointwiseOptions = { minParallel: Infinity };

function time(name: string, shape: string, ref: () => void, wasm: (o: PointwiseOptions) => void): PointwiseRow {
  const refMs = bestMs(ref, 2, 9);
  const wasmMs = bestMs(() => wasm(threaded), 2, 15);
  const wasm1Ms = bestMs(() => wasm(oneThread), 2, 15);
  return { name, shape, refMs, wasmMs, wasm1Ms };
}

function contiguous(shape: readonly number[]): number[] {
  const st = new Array<number>(shape.length);
  for (let i = shape.length - 1, s = 1; i >= 0; s *= shape[i], i--) st[i] = s;
  return st;
}

/** Strides of `of` broadcast to `shape` (0 on its size-1 axes). */
function broadcast(of: readonly number[], shape: readonly number[]): number[] {
  const st = contiguous(of);
  return shape.map((d, i) => (of[i] === 1 && d !== 1 ? 0 : st[i]));
}

export function benchPointwise(): PointwiseRow[] {
  if (!wasmAvailable()) return [];
  const rows: PointwiseRow[] = [];
  const shape = [16, 64, 48, 48];
  const n = shape.reduce((a, b) => a * b);
  const st = contiguous(shape);
  const a = randomFloat32(n), b = randomFloat32(n), out = new Float32Array(n);
  const label = '16x64x48x48';
  rows.push(time('add', label, () => binary('add', shape, a, st, b, st, out, st),
    (o) => binaryWasm('add', shape, a, st, b, st, out, st, o)));
  for (const [name, op, of] of [['add per-channel', 'add', [1, 64, 1, 1]], ['mul per-channel', 'mul', [1, 64, 1, 1]],
    ['mul mask', 'mul', [16, 1, 48, 48]]] as const) {
    const c = randomFloat32((of as readonly number[]).reduce((p, d) => p * d, 1)), cs = broadcast(of, shape);
    rows.push(time(name, `${label} ∘ ${of.join('x')}`, () => binary(op, shape, a, st, c, cs, out, st),
      (o) => binaryWasm(op, shape, a, st, c, cs, out, st, o)));
  }
  for (const op of ['relu', 'reluGrad'] as const) {
    rows.push(time(op, label, () => unary(op, a, out), (o) => unaryWasm(op, a, out, o)));
  }

  // dense (N, C, H, W), and the sparse batch norm's (sites, C) rows: 8 images × 1024 visible sites at 64 channels
  for (const [bn, s, passes] of [['16x128x24x24', { outer: 16, C: 128, inner: 24 * 24 }, true], ['8192x64 (sites, C)', { outer: 8192, C: 64, inner: 1 }, false]] as const) {
    const m = s.outer * s.C * s.inner;
    const x = randomFloat32(m), g = randomFloat32(m), y = new Float32Array(m), dx = new Float32Array(m);
    const gamma = randomFloat32(s.C), beta = randomFloat32(s.C);
    const mean = new Float64Array(s.C), varB = new Float64Array(s.C), invStd = new Float64Array(s.C).fill(1.5);
    const dGamma = new Float32Array(s.C), dBeta = new Float32Array(s.C);
    if (passes) {
      rows.push(time('bn statistics', bn, () => channelStats(x, s, mean, varB), (o) => channelStatsWasm(x, s, mean, varB, o)));
      rows.push(time('bn normalize', bn, () => channelNormalize(x, s, mean, invStd, gamma, beta, y),
        (o) => channelNormalizeWasm(x, s, mean, invStd, gamma, beta, y, o)));
      rows.push(time('bn backward', bn, () => channelNormalizeBackward(g, x, s, mean, invStd, gamma, true, dx, dGamma, dBeta),
        (o) => channelNormalizeBackwardWasm(g, x, s, mean, invStd, gamma, true, dx, dGamma, dBeta, o)));
    }
    rows.push(time('bn forward + backward', bn, () => {
      channelStats(x, s, mean, varB);
      channelNormalize(x, s, mean, invStd, gamma, beta, y);
      channelNormalizeBackward(g, x, s, mean, invStd, gamma, true, dx, dGamma, dBeta);
    }, (o) => {
      channelStatsWasm(x, s, mean, varB, o);
      channelNormalizeWasm(x, s, mean, invStd, gamma, beta, y, o);
      channelNormalizeBackwardWasm(g, x, s, mean, invStd, gamma, true, dx, dGamma, dBeta, o);
    }));
  }
  return rows;
}
