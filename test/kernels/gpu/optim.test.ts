/**
 * The gpu.js LAMB step against a host re-implementation of exactly the per-parameter lines of
 * src/optim/lamb.ts step 3 in float32 rounding (the gradient taken as g·gradScale, as the device step does),
 * per gpu.js mode present: random sizes, weight decay on and off, alwaysAdapt, trustClip, bias correction,
 * gradient averaging and clipping, several steps each. Each step starts both sides from the gpu's previous
 * (w, m, v), so errors do not compound, and allows (u = 2⁻²⁴):
 *   m, v   a few roundings of their terms (6u, 8u of Σ|terms|)
 *   u      Δu ≤ Δm/(bc1·denom) + 16u·|u|  (√v and the divisions add a few u each), + 4u·|wd·w|
 *   ratio  relative 2(n + 4)u (float32 sums of n squares) + Σ|u|·Δu/‖u‖² + 4u
 *   w      4u·(|w| + lr·|u·ratio|) + lr·ratio·(Δu + |u|·Δratio)
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import type { LambStep } from '../../../src/backend/device.ts';
import { lambStep } from '../../../kernels/gpu/optim.ts';
import type { GpuArray, GpuRuntime } from '../../../kernels/gpu/runtime.ts';
import { U32, forEachMode, randomF32, seeded } from './helpers.ts';

const r = Math.fround;

interface State { w: Float32Array; m: Float32Array; v: Float32Array }

/** src/optim/lamb.ts step 3 for one float32 parameter, line for line; returns the new state and the tolerances. */
function hostStep(s: State, g: Float32Array, h: LambStep): { next: State; tol: State } {
  const n = s.w.length;
  const w = s.w.slice(), m = s.m.slice(), v = s.v.slice(), u = new Float32Array(n);
  const { beta1, beta2, beta3, eps, lr, bc1, bc2Sqrt } = h;
  const wd = h.weightDecay;
  const tm = new Float32Array(n), tv = new Float32Array(n), du = new Float64Array(n);
  let wNorm2 = 0, uNorm2 = 0;
  for (let i = 0; i < n; i++) {
    const gi = r(g[i] * h.gradScale);
    tm[i] = 6 * U32 * (Math.abs(beta1 * m[i]) + Math.abs(beta3 * gi));
    tv[i] = 8 * U32 * (beta2 * v[i] + (1 - beta2) * gi * gi);
    m[i] = beta1 * m[i] + beta3 * gi;
    v[i] = beta2 * v[i] + (1 - beta2) * gi * gi;
    const denom = r(r(Math.sqrt(v[i]) / bc2Sqrt) + eps);
    let ui = r(r(m[i] / bc1) / denom);
    du[i] = tm[i] / (bc1 * denom) + 16 * U32 * Math.abs(ui);
    if (wd !== 0) { du[i] += 4 * U32 * Math.abs(wd * w[i]); ui = r(ui + wd * w[i]); }
    u[i] = ui;
    wNorm2 += w[i] * w[i];
    uNorm2 += ui * ui;
  }
  let ratio = 1, dRatio = 0;
  if (h.adapt) {
    const wNorm = Math.sqrt(wNorm2), uNorm = Math.sqrt(uNorm2);
    ratio = wNorm > 0 && uNorm > 0 ? r(wNorm) / r(uNorm) : 1;
    if (h.trustClip) ratio = Math.min(ratio, 1);
    ratio = r(ratio);
    let cross = 0;
    for (let i = 0; i < n; i++) cross += Math.abs(u[i]) * du[i];
    dRatio = 2 * (n + 4) * U32 + (uNorm2 > 0 ? cross / uNorm2 : 0) + 4 * U32;
  }
  const tw = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    tw[i] = 4 * U32 * (Math.abs(w[i]) + lr * Math.abs(u[i] * ratio)) + lr * ratio * (du[i] + Math.abs(u[i]) * dRatio);
    w[i] = w[i] - lr * r(u[i] * ratio);
  }
  return { next: { w, m, v }, tol: { w: tw, m: tm, v: tv } };
}

function close(what: string, got: Float32Array, want: Float32Array, tol: Float32Array): void {
  for (let i = 0; i < want.length; i++) {
    if (!(Math.abs(got[i] - want[i]) <= tol[i] + 1e-30)) assert.unreachable(`${what} [${i}]: gpu ${got[i]}, host ${want[i]} (tolerance ${tol[i]})`);
  }
}

interface Hyper {
  wd: number; alwaysAdapt: boolean; trustClip: boolean; biasCorrection: boolean; gradAveraging: boolean; gradScale: number; beta2: number; lr: number;
}

function run(rt: GpuRuntime, n: number, hy: Hyper, seed: number, steps: number): void {
  const rand = seeded(seed);
  let s: State = { w: randomF32(n, rand), m: new Float32Array(n), v: new Float32Array(n) };
  const beta1 = 0.9;
  let dev: { w: GpuArray; m: GpuArray; v: GpuArray } | null = null;
  for (let step = 1; step <= steps; step++) {
    const g = randomF32(n, rand).map((x) => x * (step % 2 ? 1 : 3));
    const h: LambStep = {
      lr: hy.lr, beta1, beta2: hy.beta2, beta3: hy.gradAveraging ? 1 - beta1 : 1, eps: 1e-6, weightDecay: hy.wd,
      bc1: hy.biasCorrection ? 1 - beta1 ** step : 1, bc2Sqrt: Math.sqrt(hy.biasCorrection ? 1 - hy.beta2 ** step : 1),
      gradScale: hy.gradScale, adapt: hy.wd !== 0 || hy.alwaysAdapt, trustClip: hy.trustClip,
    };
    const { next, tol } = hostStep(s, g, h);
    // the gpu gets host arrays on the first step and its own textures after, as the optimizer hands them
    const d = lambStep(rt, dev?.w ?? s.w, g, dev?.m ?? s.m, dev?.v ?? s.v, n, h);
    if (dev) { dev.w.dispose(); dev.m.dispose(); dev.v.dispose(); }
    dev = d;
    const got = { w: d.w.read(), m: d.m.read(), v: d.v.read() };
    const what = `n ${n} step ${step} ${JSON.stringify(hy)}`;
    close(`m ${what}`, got.m, next.m, tol.m);
    close(`v ${what}`, got.v, next.v, tol.v);
    close(`w ${what}`, got.w, next.w, tol.w);
    assert.ok(got.w.some((x, i) => x !== s.w[i]), `${what}: the weight moved`);
    s = got;
  }
  if (dev) { dev.w.dispose(); dev.m.dispose(); dev.v.dispose(); }
}

const HYPERS: Hyper[] = [
  { wd: 0.05, alwaysAdapt: false, trustClip: false, biasCorrection: true, gradAveraging: true, gradScale: 1, beta2: 0.95, lr: 1e-3 },
  { wd: 0, alwaysAdapt: false, trustClip: false, biasCorrection: true, gradAveraging: true, gradScale: 0.37, beta2: 0.999, lr: 1e-2 },
  { wd: 0, alwaysAdapt: true, trustClip: true, biasCorrection: false, gradAveraging: false, gradScale: 1, beta2: 0.999, lr: 0.5 },
  { wd: 0.3, alwaysAdapt: false, trustClip: true, biasCorrection: true, gradAveraging: false, gradScale: 0.37, beta2: 0.95, lr: 0.1 },
];

forEachMode('gpu LAMB step equals lamb.ts step 3 in float32, over several steps', (rt) => {
  const before = rt.liveTextures();
  fc.assert(fc.property(fc.integer({ min: 1, max: 300 }), fc.integer(), (n, seed) => {
    for (const hy of HYPERS) run(rt, n, hy, seed++, 4);
  }), { numRuns: 3 });
  // a long tensor: the norms take several chunked passes
  run(rt, 2500, HYPERS[0], 1, 3);
  assert.is(rt.liveTextures(), before, 'every texture is freed');
});

forEachMode('gpu LAMB trust ratio: a zero weight gives ratio 1, trustClip caps it at 1', (rt) => {
  const n = 4, g = new Float32Array([0.5, -1, 2, 0.25]);
  const h: LambStep = {
    lr: 0.1, beta1: 0.9, beta2: 0.999, beta3: 0.1, eps: 1e-6, weightDecay: 0, bc1: 0.1, bc2Sqrt: Math.sqrt(0.001), gradScale: 1, adapt: true, trustClip: false,
  };
  // w = 0: ‖w‖ = 0, ratio 1, so w ← −lr·u with u = sign(g) (the first Adam step)
  const d = lambStep(rt, new Float32Array(n), g, new Float32Array(n), new Float32Array(n), n, h);
  close('zero weight', d.w.read(), Float32Array.from(g, (x) => -0.1 * Math.sign(x)), new Float32Array(n).fill(1e-6));
  d.w.dispose(); d.m.dispose(); d.v.dispose();
  // ‖w‖ = 200 ≫ ‖u‖ = 2: ratio 100, clipped to 1
  const w = new Float32Array([100, -100, 100, -100]);
  const c = lambStep(rt, w, g, new Float32Array(n), new Float32Array(n), n, { ...h, trustClip: true });
  close('clipped ratio', c.w.read(), Float32Array.from(w, (x, i) => x - 0.1 * Math.sign(g[i])), new Float32Array(n).fill(1e-4));
  c.w.dispose(); c.m.dispose(); c.v.dispose();
});

test.run();
