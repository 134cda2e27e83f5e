/**
 * gpu.js batch-norm and layer-norm kernels against kernels/cpu/norm.ts, per gpu.js mode present, on random
 * (outer, C, inner) and (rows, D) shapes (plus long channels and rows, so the sums take several chunked
 * passes), inputs off-centre (offsets to ±100) and of several scales, batch and running statistics, with and
 * without dx. The reference computes its statistics in float64; the gpu sums M terms in float32, so with
 * u = 2⁻²⁴ the allowed errors are (each the standard bound for recursive summation, doubled):
 *   mean   |Δμ| ≤ δ + 2u·|μ|,  δ = 2(M + 2)·u·mean|x − p|   (p: the pivot, each channel's or row's first
 *          value; δ bounds the error of the shift m' = Σ(x − p)/M, 2u|μ| the rounding of μ = p + m')
 *   var    |Δσ²| ≤ 2(M + 4)·u·(σ² + δ²) + δ²    (a shift off by δ adds δ² to the centred sum)
 *   sums   |Δ| ≤ 2(terms + 2)·u·Σ|terms|        (dβ, dγ, and through them dx)
 *   maps   8u·Σ|operands|                        (y, dx: a handful of float32 roundings)
 * The worst errors seen are printed, relative to mean|x| (μ) and σ² (variance).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import {
  channelNormalize, channelNormalizeBackward, channelStats, layerNormBackward, layerNormForward, type ChannelShape,
} from '../../../kernels/cpu/norm.ts';
import * as gpuNorm from '../../../kernels/gpu/norm.ts';
import type { GpuRuntime } from '../../../kernels/gpu/runtime.ts';
import { U32, forEachMode, randomF32, seeded } from './helpers.ts';

function within(what: string, got: ArrayLike<number>, want: ArrayLike<number>, tol: ArrayLike<number>): number {
  assert.is(got.length, want.length, `${what}: length`);
  let worst = 0;
  for (let i = 0; i < want.length; i++) {
    const e = Math.abs(got[i] - want[i]);
    if (!(e <= tol[i])) assert.unreachable(`${what} [${i}]: gpu ${got[i]}, reference ${want[i]} (tolerance ${tol[i]})`);
    worst = Math.max(worst, e / Math.max(tol[i], 1e-300));
  }
  return worst;
}

/** Read and dispose. */
function take(d: { read(): Float32Array; dispose(): void } | null): Float32Array {
  if (!d) throw new Error('missing result');
  const v = d.read();
  d.dispose();
  return v;
}

const seen = { mean: 0, var: 0, invStd: 0 };

const f64 = (a: ArrayLike<number>) => Float64Array.from(a);

function channelCase(rt: GpuRuntime, s: ChannelShape, offset: number, scale: number, batchStats: boolean, wantDx: boolean, seed: number): void {
  const { outer, C, inner } = s;
  const M = outer * inner, n = outer * C * inner;
  const rand = seeded(seed);
  const x = randomF32(n, rand).map((v, i) => v * scale + offset * (1 + (Math.floor(i / inner) % C)));
  const g = randomF32(n, rand);
  const gamma = randomF32(C, rand).map((v) => v + 1.5), beta = randomF32(C, rand);
  const tag = `(${outer}, ${C}, ${inner}) offset ${offset} scale ${scale}`;
  const chan = (i: number) => Math.floor(i / inner) % C;

  // statistics
  const mean = new Float64Array(C), vr = new Float64Array(C), absMean = new Float64Array(C), absDev = new Float64Array(C);
  channelStats(x, s, mean, vr);
  for (let i = 0; i < n; i++) {
    absMean[chan(i)] += Math.abs(x[i]) / M;
    absDev[chan(i)] += Math.abs(x[i] - x[chan(i) * inner]) / M;
  }
  const st = gpuNorm.channelStats(rt, x, s);
  const gm = take(st.mean), gv = take(st.varBiased);
  const dShift = Array.from(absDev, (a) => 2 * (M + 2) * U32 * a);
  within(`mean ${tag}`, gm, mean, Array.from(dShift, (d, c) => d + 2 * U32 * Math.abs(mean[c])));
  within(`var ${tag}`, gv, vr, Array.from(vr, (v, c) => 2 * (M + 4) * U32 * (v + dShift[c] ** 2) + dShift[c] ** 2));
  for (let c = 0; c < C; c++) {
    seen.mean = Math.max(seen.mean, Math.abs(gm[c] - mean[c]) / absMean[c]);
    if (vr[c] > 0) seen.var = Math.max(seen.var, Math.abs(gv[c] - vr[c]) / vr[c]);
  }

  // invStd, then normalize and backward from the same float32 statistics on both sides
  const eps = 1e-5;
  const is32 = take(gpuNorm.invStd(rt, gv, C, eps));
  within(`invStd ${tag}`, is32, Array.from(gv, (v) => 1 / Math.sqrt(v + eps)), Array.from(gv, (v) => 4 * U32 / Math.sqrt(v + eps)));
  const y = new Float32Array(n);
  channelNormalize(x, s, f64(gm), f64(is32), gamma, beta, y);
  const k = (c: number) => is32[c] * gamma[c];
  within(`normalize ${tag}`, take(gpuNorm.channelNormalize(rt, x, s, gm, is32, gamma, beta)), y,
    Array.from(y, (_, i) => 8 * U32 * (Math.abs(x[i] * k(chan(i))) + Math.abs(beta[chan(i)]) + Math.abs(gm[chan(i)] * k(chan(i))))));

  const dx = new Float64Array(n), dGamma = new Float64Array(C), dBeta = new Float64Array(C);
  channelNormalizeBackward(g, x, s, f64(gm), f64(is32), gamma, batchStats, dx, dGamma, dBeta);
  const b = gpuNorm.channelNormalizeBackward(rt, g, x, s, gm, is32, gamma, batchStats, wantDx);
  // magnitudes: Σ|g|, Σ|g·x̂| per channel, and |x̂| per element
  const sg = new Float64Array(C), sgx = new Float64Array(C);
  const xh = (i: number) => Math.abs((x[i] - gm[chan(i)]) * is32[chan(i)]);
  for (let i = 0; i < n; i++) {
    const c = chan(i);
    sg[c] += Math.abs(g[i]);
    sgx[c] += Math.abs(g[i]) * (xh(i) + Math.abs(gm[c] * is32[c]) * U32 * 4);
  }
  within(`dBeta ${tag}`, take(b.dBeta), dBeta, Array.from(sg, (v) => 2 * (M + 2) * U32 * v));
  within(`dGamma ${tag}`, take(b.dGamma), dGamma, Array.from(sgx, (v) => 2 * (M + 4) * U32 * v));
  if (!wantDx) { assert.is(b.dx, null); return; }
  within(`dx ${tag} batchStats ${batchStats}`, take(b.dx), dx, Array.from(dx, (_, i) => {
    const c = chan(i), gk = Math.abs(k(c));
    if (!batchStats) return 4 * U32 * gk * Math.abs(g[i]);
    const a = sg[c] / M, bb = sgx[c] / M;
    return gk * (8 * U32 * (Math.abs(g[i]) + a + xh(i) * bb) + 2 * (M + 4) * U32 * (a + xh(i) * bb));
  }));
}

/** Per shape (each compiles its own kernels) several cases reuse them: the flags and the data vary. */
const FLAGS: [boolean, boolean, number, number][] = [[true, true, -100, 0.01], [false, true, 3, 10], [true, false, 0, 1]];

forEachMode('gpu batch-norm statistics, normalize and backward equal the reference', (rt) => {
  const before = rt.liveTextures();
  fc.assert(fc.property(
    fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 40 }), fc.integer(),
    (outer, C, inner, seed) => {
      for (const [batchStats, wantDx, offset, scale] of FLAGS) channelCase(rt, { outer, C, inner }, offset, scale, batchStats, wantDx, seed++);
    }), { numRuns: 2 });
  // long channels: several chunked passes per sum
  channelCase(rt, { outer: 3, C: 2, inner: 1500 }, -100, 1, true, true, 1);
  assert.is(rt.liveTextures(), before, 'every texture is freed');
});

function layerCase(rt: GpuRuntime, rows: number, D: number, offset: number, scale: number, wantDx: boolean, seed: number): void {
  const n = rows * D, eps = 1e-5;
  const rand = seeded(seed);
  const x = randomF32(n, rand).map((v, i) => v * scale + offset * (1 + (Math.floor(i / D) % 3)));
  const g = randomF32(n, rand);
  const gamma = randomF32(D, rand).map((v) => v + 1.5), beta = randomF32(D, rand);
  const tag = `(${rows}, ${D}) offset ${offset} scale ${scale}`;

  const y = new Float32Array(n), mean = new Float64Array(rows), is = new Float64Array(rows);
  layerNormForward(x, rows, D, eps, gamma, beta, y, mean, is);
  const f = gpuNorm.layerNormForward(rt, x, rows, D, eps, gamma, beta);
  const gy = take(f.y), gm = take(f.mean), gs = take(f.invStd);
  const absMean = new Float64Array(rows), absDev = new Float64Array(rows);
  for (let i = 0; i < n; i++) {
    const r = Math.floor(i / D);
    absMean[r] += Math.abs(x[i]) / D;
    absDev[r] += Math.abs(x[i] - x[r * D]) / D;
  }
  const dShift = Array.from(absDev, (a) => 2 * (D + 2) * U32 * a);
  const dMean = Array.from(dShift, (d, r) => d + 2 * U32 * Math.abs(mean[r]));
  within(`LN mean ${tag}`, gm, mean, dMean);
  // the variance's tolerance, carried through s = (σ² + ε)^(−1/2): |Δs|/s ≤ ½·|Δσ²|/(σ² + ε) + rounding
  const dS = Array.from(is, (s, r) => {
    const v = 1 / (s * s) - eps;
    const dv = 2 * (D + 4) * U32 * (v + dShift[r] ** 2) + dShift[r] ** 2;
    return s * (dv / (v + eps) + 4 * U32);
  });
  within(`LN invStd ${tag}`, gs, is, dS);
  for (let r = 0; r < rows; r++) {
    seen.mean = Math.max(seen.mean, Math.abs(gm[r] - mean[r]) / absMean[r]);
    seen.invStd = Math.max(seen.invStd, Math.abs(gs[r] - is[r]) / is[r]);
  }
  within(`LN y ${tag}`, gy, y, Array.from(y, (_, i) => {
    const r = Math.floor(i / D), d = i % D;
    const xc = Math.abs(x[i] - mean[r]);
    return Math.abs(gamma[d]) * (is[r] * dMean[r] + xc * dS[r] + 8 * U32 * xc * is[r]) + 8 * U32 * Math.abs(beta[d]);
  }));

  // backward from the gpu's float32 statistics on both sides
  const dx = new Float64Array(n), dGamma = new Float64Array(D), dBeta = new Float64Array(D);
  layerNormBackward(g, x, rows, D, gamma, f64(gm), f64(gs), dx, dGamma, dBeta);
  const b = gpuNorm.layerNormBackward(rt, g, x, rows, D, gamma, gm, gs, wantDx);
  const xh = (i: number) => Math.abs((x[i] - gm[Math.floor(i / D)]) * gs[Math.floor(i / D)]);
  const sg = new Float64Array(D), sgx = new Float64Array(D), rg = new Float64Array(rows), rgx = new Float64Array(rows);
  for (let i = 0; i < n; i++) {
    const r = Math.floor(i / D), d = i % D;
    sg[d] += Math.abs(g[i]); sgx[d] += Math.abs(g[i]) * xh(i);
    rg[r] += Math.abs(g[i] * gamma[d]); rgx[r] += Math.abs(g[i] * gamma[d]) * xh(i);
  }
  within(`LN dBeta ${tag}`, take(b.dBeta), dBeta, Array.from(sg, (v) => 2 * (rows + 2) * U32 * v));
  within(`LN dGamma ${tag}`, take(b.dGamma), dGamma, Array.from(sgx, (v) => 2 * (rows + 4) * U32 * v));
  if (!wantDx) { assert.is(b.dx, null); return; }
  within(`LN dx ${tag}`, take(b.dx), dx, Array.from(dx, (_, i) => {
    const r = Math.floor(i / D), a = rg[r] / D, bb = rgx[r] / D;
    return gs[r] * (8 * U32 * (Math.abs(g[i] * gamma[i % D]) + a + xh(i) * bb) + 2 * (D + 4) * U32 * (a + xh(i) * bb));
  }));
}

forEachMode('gpu layer norm forward and backward equal the reference', (rt) => {
  const before = rt.liveTextures();
  fc.assert(fc.property(fc.integer({ min: 1, max: 7 }), fc.integer({ min: 1, max: 40 }), fc.integer(), (rows, D, seed) => {
    for (const [, wantDx, offset, scale] of FLAGS) layerCase(rt, rows, D, offset, scale, wantDx, seed++);
  }), { numRuns: 2 });
  // long rows: several chunked passes per row sum
  layerCase(rt, 3, 1100, -100, 0.01, true, 3);
  assert.is(rt.liveTextures(), before, 'every texture is freed');
});

test('gpu norm: worst statistic errors seen', () => {
  const e = (v: number) => v.toExponential(2);
  console.log(`  worst |Δμ|/mean|x| ${e(seen.mean)}, |Δσ²|/σ² ${e(seen.var)}, layer norm |Δs|/s ${e(seen.invStd)}`);
});

test.run();
