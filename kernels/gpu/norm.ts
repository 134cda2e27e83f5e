/**
 * Normalisation kernels on gpu.js, statistics kept on the device; reference twin kernels/cpu/norm.ts (which
 * holds its statistics in float64; here everything is float32).
 * Batch norm over x viewed as (outer, C, inner), one statistic per channel c, M = outer·inner values each:
 *   channelStats   μ_c = p_c + m'_c, m'_c = Σ(x − p_c) / M, then σ²_c = Σ((x − p_c) − m'_c)² / M (two passes,
 *                  as the reference; the sums are the chunked float32 folds of reduce.ts). The pivot p_c, the
 *                  channel's first value, shifts the data near zero, so that the errors scale with the spread
 *                  of x, not with |μ| (a mean off by δ would add δ² to σ²).
 *   invStd         s = 1/√(σ² + ε)
 *   normalize      y = x·k_c + (β_c − μ_c·k_c),  k_c = s_c·γ_c
 *   backward       dβ_c = Σg,  dγ_c = s_c·Σ g·(x − μ_c),  x̂ = (x − μ)·s,
 *                  dx = γ·s·(g − Σg/M − x̂·dγ/M)   (batch statistics)   or   dx = γ·s·g   (running statistics)
 * Layer norm over rows of D values (x as (rows, D)), γ and β over D:
 *   forward        μ_r and σ²_r as above (pivot p_r = x_{r,0}), s_r = 1/√(σ²_r + ε), y = (x − μ_r)·s_r·γ + β
 *   backward       x̂ = (x − μ_r)·s_r, gγ = g·γ:  dβ = Σ_r g,  dγ = Σ_r g·x̂,
 *                  dx = s_r·(gγ − Σ_d gγ / D − x̂·Σ_d(gγ·x̂) / D)
 * γ and β are required (the op layer passes ones and zeros for a norm without affine parameters).
 */
import type { ChannelShape } from '../cpu/norm.ts';
import { type GpuArray, type GpuIn, type GpuRuntime, type KernelThis } from './runtime.ts';
import { CHUNK, fold } from './reduce.ts';

const divideKernel = function (this: KernelThis, a: number[], m: number): number {
  return a[this.thread.x] / m;
};

const invStdKernel = function (this: KernelThis, v: number[], eps: number): number {
  return 1 / Math.sqrt(v[this.thread.x] + eps);
};

/** s_r = 1/√(Σ(x − μ_r)²/D + ε) from the sum of squared deviations */
const rowInvStdKernel = function (this: KernelThis, sq: number[], d: number, eps: number): number {
  return 1 / Math.sqrt(sq[this.thread.x] / d + eps);
};

/** μ_t = p_t + m'_t, the pivot p_t = x[t·stride] */
const pivotMeanKernel = function (this: KernelThis, x: number[], shift: number[]): number {
  return x[this.thread.x * this.constants.stride] + shift[this.thread.x];
};

/**
 * Mean and Σ(x − μ)² over `axes` of x (shape), one per kept index t, whose first value (the pivot p_t) sits at
 * x[t·stride]: m'_t = Σ(x − p_t)/m, μ_t = p_t + m'_t, and the squares are summed as ((x − p_t) − m'_t)², so
 * that the rounding of μ_t to float32 (up to u·|μ|, large for off-centre data) does not enter the variance.
 */
function pivotedStats(
  rt: GpuRuntime, x: GpuIn, shape: number[], axes: number[], kept: number, stride: number, m: number,
): { mean: GpuArray; sq: GpuArray } {
  const sum = fold(rt, 'sumDev', shape, axes, x, null, x, CHUNK, stride);
  const shift = rt.run('norm.divide', divideKernel, kept, {}, [sum, m]);
  sum.dispose();
  const mean = rt.run('norm.pivotMean', pivotMeanKernel, kept, { stride }, [x, shift]);
  const sq = fold(rt, 'sumSqShift', shape, axes, x, shift, x, CHUNK, stride);
  shift.dispose();
  return { mean, sq };
}

/** Per-channel mean and biased variance, (C) each. */
export function channelStats(rt: GpuRuntime, x: GpuIn, s: ChannelShape): { mean: GpuArray; varBiased: GpuArray } {
  const { outer, C, inner } = s;
  const shape = [outer, C, inner], M = outer * inner;
  const { mean, sq } = pivotedStats(rt, x, shape, [0, 2], C, inner, M);
  const varBiased = rt.run('norm.divide', divideKernel, C, {}, [sq, M]);
  sq.dispose();
  return { mean, varBiased };
}

/** invStd = 1/√(var + eps), n values. */
export function invStd(rt: GpuRuntime, varBiased: GpuIn, n: number, eps: number): GpuArray {
  return rt.run('norm.invStd', invStdKernel, n, {}, [varBiased, eps]);
}

/** y = x·k_c + (β_c − μ_c·k_c), k_c = s_c·γ_c; the channel of flat t is ⌊t / inner⌋ mod C. */
const channelNormalizeKernel = function (this: KernelThis, x: number[], mean: number[], invStd: number[], gamma: number[], beta: number[]): number {
  const oc = idiv(this.thread.x, this.constants.inner);
  const c = oc - idiv(oc, this.constants.C) * this.constants.C;
  const k = invStd[c] * gamma[c];
  return x[this.thread.x] * k + (beta[c] - mean[c] * k);
};

export function channelNormalize(
  rt: GpuRuntime, x: GpuIn, s: ChannelShape, mean: GpuIn, invStd: GpuIn, gamma: GpuIn, beta: GpuIn,
): GpuArray {
  const { outer, C, inner } = s;
  return rt.run('norm.channelNormalize', channelNormalizeKernel, outer * C * inner, { C, inner }, [x, mean, invStd, gamma, beta]);
}

/** dγ_c = s_c·Σ g·(x − μ_c) */
const scaleKernel = function (this: KernelThis, a: number[], b: number[]): number {
  return a[this.thread.x] * b[this.thread.x];
};

/** dx = γ_c·s_c·(g − Σg/M − (x − μ_c)·s_c·dγ_c/M) */
const channelBackwardBatchKernel = function (
  this: KernelThis, g: number[], x: number[], mean: number[], invStd: number[], gamma: number[], sumG: number[], sumGX: number[],
): number {
  const oc = idiv(this.thread.x, this.constants.inner);
  const c = oc - idiv(oc, this.constants.C) * this.constants.C;
  const s = invStd[c];
  const a = sumG[c] / this.constants.M;
  const b = sumGX[c] / this.constants.M;
  return gamma[c] * s * (g[this.thread.x] - a - (x[this.thread.x] - mean[c]) * s * b);
};

/** dx = γ_c·s_c·g (running statistics are constants) */
const channelBackwardRunningKernel = function (this: KernelThis, g: number[], invStd: number[], gamma: number[]): number {
  const oc = idiv(this.thread.x, this.constants.inner);
  const c = oc - idiv(oc, this.constants.C) * this.constants.C;
  return gamma[c] * invStd[c] * g[this.thread.x];
};

/** Gradients of channelNormalize: dx (null when not wanted), dγ and dβ (C each). */
export function channelNormalizeBackward(
  rt: GpuRuntime, g: GpuIn, x: GpuIn, s: ChannelShape, mean: GpuIn, invStd: GpuIn, gamma: GpuIn, batchStats: boolean, wantDx: boolean,
): { dx: GpuArray | null; dGamma: GpuArray; dBeta: GpuArray } {
  const { outer, C, inner } = s;
  const shape = [outer, C, inner], n = outer * C * inner;
  const dBeta = fold(rt, 'sum', shape, [0, 2], g);
  const gDev = fold(rt, 'sumDotDev', shape, [0, 2], g, x, mean);
  const dGamma = rt.run('norm.scale', scaleKernel, C, {}, [gDev, invStd]);
  gDev.dispose();
  let dx: GpuArray | null = null;
  if (wantDx) {
    dx = batchStats
      ? rt.run('norm.channelBackward.batch', channelBackwardBatchKernel, n, { C, inner, M: outer * inner },
        [g, x, mean, invStd, gamma, dBeta, dGamma])
      : rt.run('norm.channelBackward.running', channelBackwardRunningKernel, n, { C, inner }, [g, invStd, gamma]);
  }
  return { dx, dGamma, dBeta };
}

/** y = (x − μ_r)·s_r·γ_d + β_d over (rows, D) */
const layerNormKernel = function (this: KernelThis, x: number[], mean: number[], invStd: number[], gamma: number[], beta: number[]): number {
  const r = idiv(this.thread.x, this.constants.D);
  const d = this.thread.x - r * this.constants.D;
  return (x[this.thread.x] - mean[r]) * invStd[r] * gamma[d] + beta[d];
};

/** y, and the per-row mean and invStd (rows each). */
export function layerNormForward(
  rt: GpuRuntime, x: GpuIn, rows: number, D: number, eps: number, gamma: GpuIn, beta: GpuIn,
): { y: GpuArray; mean: GpuArray; invStd: GpuArray } {
  const shape = [rows, D];
  const { mean, sq } = pivotedStats(rt, x, shape, [1], rows, D, D);
  const is = rt.run('norm.rowInvStd', rowInvStdKernel, rows, {}, [sq, D, eps]);
  sq.dispose();
  const y = rt.run('norm.layerNorm', layerNormKernel, rows * D, { D }, [x, mean, is, gamma, beta]);
  return { y, mean, invStd: is };
}

/** x̂ = (x − μ_r)·s_r over (rows, D) */
const xhatKernel = function (this: KernelThis, x: number[], mean: number[], invStd: number[]): number {
  const r = idiv(this.thread.x, this.constants.D);
  return (x[this.thread.x] - mean[r]) * invStd[r];
};

/** gγ = g·γ_d over (rows, D) */
const gGammaKernel = function (this: KernelThis, g: number[], gamma: number[]): number {
  const r = idiv(this.thread.x, this.constants.D);
  return g[this.thread.x] * gamma[this.thread.x - r * this.constants.D];
};

/** dx = s_r·(gγ − Σ_d gγ / D − x̂·Σ_d(gγ·x̂) / D) */
const layerNormDxKernel = function (this: KernelThis, gg: number[], xhat: number[], invStd: number[], sumG: number[], sumGX: number[]): number {
  const r = idiv(this.thread.x, this.constants.D);
  const a = sumG[r] / this.constants.D;
  const b = sumGX[r] / this.constants.D;
  return invStd[r] * (gg[this.thread.x] - a - xhat[this.thread.x] * b);
};

/** Gradients of layerNormForward: dx (null when not wanted), dγ and dβ (D each). */
export function layerNormBackward(
  rt: GpuRuntime, g: GpuIn, x: GpuIn, rows: number, D: number, gamma: GpuIn, mean: GpuIn, invStd: GpuIn, wantDx: boolean,
): { dx: GpuArray | null; dGamma: GpuArray; dBeta: GpuArray } {
  const shape = [rows, D], n = rows * D;
  const dBeta = fold(rt, 'sum', shape, [0], g);
  const xhat = rt.run('norm.xhat', xhatKernel, n, { D }, [x, mean, invStd]);
  const dGamma = fold(rt, 'sumDot', shape, [0], g, xhat);
  let dx: GpuArray | null = null;
  if (wantDx) {
    const gg = rt.run('norm.gGamma', gGammaKernel, n, { D }, [g, gamma]);
    const sumG = fold(rt, 'sum', shape, [1], gg);
    const sumGX = fold(rt, 'sumDot', shape, [1], gg, xhat);
    dx = rt.run('norm.layerNormDx', layerNormDxKernel, n, { D }, [gg, xhat, invStd, sumG, sumGX]);
    gg.dispose(); sumG.dispose(); sumGX.dispose();
  }
  xhat.dispose();
  return { dx, dGamma, dBeta };
}
