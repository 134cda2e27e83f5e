/**
 * Normalisation kernels, over x viewed as (outer, C, inner) with statistics per channel c (batch norm: N, C,
 * H·W; layer norm over the last dims: rows, D, 1 with one statistic per row — see `rowStats`).
 * Statistics are two-pass sums in float64 (mean, then Σ(x − mean)²), as accurate as PyTorch's Welford.
 *
 *   batch-norm forward:   y = (x − μ_c)·s_c·γ_c + β_c,  s_c = 1/√(σ²_c + ε)
 *   batch-norm backward:  with x̂ = (x − μ)·s and M = outer·inner values per channel,
 *     dβ_c = Σ g,  dγ_c = Σ g·x̂,
 *     dx = γ·s/M · (M·g − Σg − x̂·Σ(g·x̂))        (batch statistics: three terms)
 *     dx = γ·s · g                             (running statistics: constants)
 * The op layer (src/ops/nn.ts) owns the running-statistic update and the choice of statistics.
 */
import type { FloatArray } from '../../src/tensor/dtype.ts';

export interface ChannelShape { outer: number; C: number; inner: number }

/** Per-channel mean and biased variance. */
export function channelStats(x: FloatArray, s: ChannelShape, mean: Float64Array, varBiased: Float64Array): void {
  const { outer, C, inner } = s;
  const M = outer * inner;
  for (let c = 0; c < C; c++) {
    let sum = 0;
    for (let o = 0; o < outer; o++) {
      const base = (o * C + c) * inner;
      for (let i = 0; i < inner; i++) sum += x[base + i];
    }
    const mu = sum / M;
    let sq = 0;
    for (let o = 0; o < outer; o++) {
      const base = (o * C + c) * inner;
      for (let i = 0; i < inner; i++) { const d = x[base + i] - mu; sq += d * d; }
    }
    mean[c] = mu;
    varBiased[c] = sq / M;
  }
}

/** y = (x − mean_c)·invStd_c·γ_c + β_c (γ, β may be null: 1 and 0). */
export function channelNormalize(
  x: FloatArray, s: ChannelShape, mean: Float64Array, invStd: Float64Array, gamma: FloatArray | null, beta: FloatArray | null, y: FloatArray,
): void {
  const { outer, C, inner } = s;
  for (let o = 0; o < outer; o++) {
    for (let c = 0; c < C; c++) {
      const scale = invStd[c] * (gamma ? gamma[c] : 1);
      const shift = (beta ? beta[c] : 0) - mean[c] * scale;
      const base = (o * C + c) * inner;
      for (let i = 0; i < inner; i++) y[base + i] = x[base + i] * scale + shift;
    }
  }
}

/**
 * Gradients of channelNormalize. `batchStats`: the statistics came from x itself (three-term dx); otherwise they
 * are constants. dx, dGamma, dBeta may be null when not wanted.
 */
export function channelNormalizeBackward(
  g: FloatArray, x: FloatArray, s: ChannelShape, mean: Float64Array, invStd: Float64Array, gamma: FloatArray | null, batchStats: boolean,
  dx: FloatArray | null, dGamma: FloatArray | null, dBeta: FloatArray | null,
): void {
  const { outer, C, inner } = s;
  const M = outer * inner;
  for (let c = 0; c < C; c++) {
    let sumG = 0, sumGX = 0;
    const mu = mean[c], is = invStd[c];
    for (let o = 0; o < outer; o++) {
      const base = (o * C + c) * inner;
      for (let i = 0; i < inner; i++) {
        const gi = g[base + i];
        sumG += gi;
        sumGX += gi * (x[base + i] - mu) * is;
      }
    }
    if (dBeta) dBeta[c] = sumG;
    if (dGamma) dGamma[c] = sumGX;
    if (!dx) continue;
    const k = (gamma ? gamma[c] : 1) * is;
    for (let o = 0; o < outer; o++) {
      const base = (o * C + c) * inner;
      if (batchStats) {
        const a = sumG / M, b = sumGX / M;
        for (let i = 0; i < inner; i++) dx[base + i] = k * (g[base + i] - a - (x[base + i] - mu) * is * b);
      } else {
        for (let i = 0; i < inner; i++) dx[base + i] = k * g[base + i];
      }
    }
  }
}

/**
 * Layer norm over rows of length D (x as (rows, D)), γ/β over D:
 *   y = x̂·γ + β, x̂ = (x − μ_r)·s_r;  dx = s/D · (D·gγ − Σgγ − x̂·Σ(gγ·x̂)),  dγ = Σ_r g·x̂,  dβ = Σ_r g.
 */
export function layerNormForward(x: FloatArray, rows: number, D: number, eps: number, gamma: FloatArray | null, beta: FloatArray | null, y: FloatArray, mean: Float64Array, invStd: Float64Array): void {
  for (let r = 0; r < rows; r++) {
    const base = r * D;
    let sum = 0;
    for (let d = 0; d < D; d++) sum += x[base + d];
    const mu = sum / D;
    let sq = 0;
    for (let d = 0; d < D; d++) { const v = x[base + d] - mu; sq += v * v; }
    const is = 1 / Math.sqrt(sq / D + eps);
    mean[r] = mu;
    invStd[r] = is;
    for (let d = 0; d < D; d++) y[base + d] = (x[base + d] - mu) * is * (gamma ? gamma[d] : 1) + (beta ? beta[d] : 0);
  }
}

export function layerNormBackward(
  g: FloatArray, x: FloatArray, rows: number, D: number, gamma: FloatArray | null, mean: Float64Array, invStd: Float64Array,
  dx: FloatArray | null, dGamma: Float64Array | null, dBeta: Float64Array | null,
): void {
  if (dGamma) dGamma.fill(0);
  if (dBeta) dBeta.fill(0);
  for (let r = 0; r < rows; r++) {
    const base = r * D, mu = mean[r], is = invStd[r];
    let sumG = 0, sumGX = 0;
    for (let d = 0; d < D; d++) {
      const gi = g[base + d], xh = (x[base + d] - mu) * is;
      const gw = gi * (gamma ? gamma[d] : 1);
      sumG += gw;
      sumGX += gw * xh;
      if (dGamma) dGamma[d] += gi * xh;
      if (dBeta) dBeta[d] += gi;
    }
    if (!dx) continue;
    const a = sumG / D, b = sumGX / D;
    for (let d = 0; d < D; d++) {
      const xh = (x[base + d] - mu) * is;
      dx[base + d] = is * (g[base + d] * (gamma ? gamma[d] : 1) - a - xh * b);
    }
  }
}
