/**
 * The batch-norm channel passes on WebAssembly SIMD, with the signatures of `kernels/cpu/norm.ts` (its
 * `channelStats`, `channelNormalize` and `channelNormalizeBackward` are the reference twins), x viewed as
 * (outer, C, inner):
 *
 *   statistics   μ_c = Σx / M, σ²_c = Σ(x − μ_c)² / M  (two passes, M = outer·inner), per channel
 *   normalise    y = x·scale_c + shift_c,  scale = s·γ, shift = β − μ·scale,  s = 1/√(σ² + ε) (given)
 *   backward     Σg, Σg·x̂ per channel, then dx = k·((g − a) − x̂·b) with k = γ·s, a = Σg / M, b = Σg·x̂ / M
 *                (batch statistics), or dx = k·g (running statistics)
 *
 * The kernels (module.ts, `bn*`) widen each f32x4 load to two f64x2 and do the reference's arithmetic in float64,
 * so the statistics are as accurate as the reference's float64 sums (only the summation order differs), and y and
 * dx are the reference's values bit for bit given the same per-channel coefficients, which are computed here with
 * the reference's own expressions. Given `minParallel` (elementwise.ts; by default they stay on the calling
 * thread, which measured faster), statistics and backward sums split channels over the worker threads, the
 * normalisation and dx passes split rows.
 * Float64 inputs (gradient checks) and calls below `minElements` go to the reference; so do float32 inputs with a
 * float64 output.
 * Left out: layer norm (rows of D, small in the models here).
 */
import type { FloatArray } from '../../src/tensor/dtype.ts';
import {
  channelNormalize, channelNormalizeBackward, channelStats, type ChannelShape,
} from '../cpu/norm.ts';
import { pointwiseRuntime, pointwiseThreads, type PointwiseOptions } from './elementwise.ts';
import { splitRange, type WasmRuntime } from './runtime.ts';

/** A float64 view of `count` doubles at byte address ptr (8-aligned: the arena aligns to 64). */
function f64At(rt: WasmRuntime, ptr: number, count: number): Float64Array {
  return new Float64Array(rt.memory.buffer, ptr, count);
}

/**
 * Shares of channels (for the per-channel sums) or of rows (for the streaming passes); with inner = 1 the rows are
 * the outer index, each holding all C channels, and channel shares start at multiples of 4 (whole vectors).
 */
function channelShares(rt: WasmRuntime, s: ChannelShape, opts: PointwiseOptions): [number, number][] {
  return splitRange(s.C, pointwiseThreads(rt, s.outer * s.C * s.inner, opts), s.inner === 1 ? 4 : 1);
}
function rowShares(rt: WasmRuntime, s: ChannelShape, opts: PointwiseOptions): [number, number][] {
  return splitRange(s.inner === 1 ? s.outer : s.outer * s.C, pointwiseThreads(rt, s.outer * s.C * s.inner, opts));
}

/** Per-channel mean and biased variance; same contract as the reference `channelStats`. */
export function channelStatsWasm(x: FloatArray, s: ChannelShape, mean: Float64Array, varBiased: Float64Array, opts: PointwiseOptions = {}): void {
  const { outer, C, inner } = s;
  const n = outer * C * inner;
  const rt = pointwiseRuntime(n, opts, [x]);
  if (!rt) return channelStats(x, s, mean, varBiased);
  const mark = rt.mark();
  const xp = rt.alloc(n), stats = rt.alloc(4 * C);
  rt.write(xp, x as Float32Array, 0, n);
  const shares = channelShares(rt, s, opts);
  if (inner === 1) rt.runShares('bnStatsRows', shares.map(([c0, c1]) => [xp, outer, C, c0, c1, stats]));
  else rt.runShares('bnStats', shares.map(([c0, c1]) => [xp, outer, C, inner, c0, c1, stats]));
  const st = f64At(rt, stats, 2 * C);
  mean.set(st.subarray(0, C));
  varBiased.set(st.subarray(C, 2 * C));
  rt.reset(mark);
}

/** y = (x − mean_c)·invStd_c·γ_c + β_c; same contract as the reference `channelNormalize`. */
export function channelNormalizeWasm(
  x: FloatArray, s: ChannelShape, mean: Float64Array, invStd: Float64Array, gamma: FloatArray | null, beta: FloatArray | null,
  y: FloatArray, opts: PointwiseOptions = {},
): void {
  const { outer, C, inner } = s;
  const n = outer * C * inner;
  const rt = pointwiseRuntime(n, opts, [x, y]);
  if (!rt) return channelNormalize(x, s, mean, invStd, gamma, beta, y);
  const mark = rt.mark();
  const xp = rt.alloc(n), yp = rt.alloc(n), coef = rt.alloc(4 * C);
  rt.write(xp, x as Float32Array, 0, n);
  const cf = f64At(rt, coef, 2 * C);
  for (let c = 0; c < C; c++) {
    // the reference's own expressions, in float64
    const scale = invStd[c] * (gamma ? gamma[c] : 1);
    cf[c] = scale;
    cf[C + c] = (beta ? beta[c] : 0) - mean[c] * scale;
  }
  const shares = rowShares(rt, s, opts);
  if (inner === 1) rt.runShares('bnNormRows', shares.map(([r0, r1]) => [xp, yp, C, r0, r1, coef]));
  else rt.runShares('bnNorm', shares.map(([r0, r1]) => [xp, yp, C, inner, r0, r1, coef]));
  rt.read(yp, n, y as Float32Array);
  rt.reset(mark);
}

/** Gradients of channelNormalize; same contract as the reference `channelNormalizeBackward`. */
export function channelNormalizeBackwardWasm(
  g: FloatArray, x: FloatArray, s: ChannelShape, mean: Float64Array, invStd: Float64Array, gamma: FloatArray | null, batchStats: boolean,
  dx: FloatArray | null, dGamma: FloatArray | null, dBeta: FloatArray | null, opts: PointwiseOptions = {},
): void {
  const { outer, C, inner } = s;
  const n = outer * C * inner, M = outer * inner;
  const rt = pointwiseRuntime(n, opts, [g, x, dx]);
  if (!rt) return channelNormalizeBackward(g, x, s, mean, invStd, gamma, batchStats, dx, dGamma, dBeta);
  const mark = rt.mark();
  const gp = rt.alloc(n), xp = rt.alloc(n), dxp = dx ? rt.alloc(n) : 0;
  const ms = rt.alloc(4 * C), sums = rt.alloc(4 * C), coef = rt.alloc(10 * C);
  rt.write(gp, g as Float32Array, 0, n);
  rt.write(xp, x as Float32Array, 0, n);
  const msv = f64At(rt, ms, 2 * C);
  msv.set(mean.subarray(0, C));
  msv.set(invStd.subarray(0, C), C);
  const cShares = channelShares(rt, s, opts);
  if (inner === 1) rt.runShares('bnBwdSumsRows', cShares.map(([c0, c1]) => [gp, xp, outer, C, c0, c1, ms, sums]));
  else rt.runShares('bnBwdSums', cShares.map(([c0, c1]) => [gp, xp, outer, C, inner, c0, c1, ms, sums]));
  const sm = f64At(rt, sums, 2 * C), cf = f64At(rt, coef, 5 * C);
  for (let c = 0; c < C; c++) {
    const is = invStd[c];
    const sumG = sm[c], sumGX = sm[C + c];
    if (dBeta) dBeta[c] = sumG;
    if (dGamma) dGamma[c] = sumGX;
    // (k, a, b, μ, s) as the reference forms them
    cf[c] = (gamma ? gamma[c] : 1) * is;
    cf[C + c] = sumG / M;
    cf[2 * C + c] = sumGX / M;
    cf[3 * C + c] = mean[c];
    cf[4 * C + c] = is;
  }
  if (dx) {
    const batch = batchStats ? 1 : 0, rShares = rowShares(rt, s, opts);
    if (inner === 1) rt.runShares('bnBwdDxRows', rShares.map(([r0, r1]) => [gp, xp, dxp, C, r0, r1, batch, coef]));
    else rt.runShares('bnBwdDx', rShares.map(([r0, r1]) => [gp, xp, dxp, C, inner, r0, r1, batch, coef]));
    rt.read(dxp, n, dx as Float32Array);
  }
  rt.reset(mark);
}
