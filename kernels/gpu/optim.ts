/**
 * LAMB's per-tensor step on gpu.js: exactly the per-parameter math of src/optim/lamb.ts step 3, with every
 * tensor and both norms on the device (nothing is read back). With g·gradScale for the clipped gradient g:
 *   m ← β1·m + β3·g                       v ← β2·v + (1 − β2)·g²
 *   u = (m/bc1) / (√v/bc2Sqrt + eps),  + wd·w when wd ≠ 0      (w: the weight before this step)
 *   ratio = ‖w‖/‖u‖ when adapting (1 when either norm is 0; min(ratio, 1) with trustClip), else 1
 *   w ← w − lr·(u·ratio)
 * ‖w‖² and ‖u‖² are float32 chunked sums (reduce.ts sumSq), where lamb.ts accumulates float64; the clipped
 * gradient is g·gradScale here and g/clip there (one float32 rounding apart). The grads themselves are left
 * as they are: the caller divides them in place when clipping, as timm does.
 * Kernels: m, v, u (n each), the two norms, the ratio (1 value), then w; hyperparameters are arguments, so one
 * compiled set serves every step of a schedule.
 */
import type { LambStep } from '../../src/backend/device.ts';
import { type GpuArray, type GpuIn, type GpuRuntime, type KernelThis } from './runtime.ts';
import { fold } from './reduce.ts';

/** m ← β1·m + β3·(g·gradScale) */
const momentKernel = function (this: KernelThis, m: number[], g: number[], beta1: number, beta3: number, gradScale: number): number {
  return beta1 * m[this.thread.x] + beta3 * (g[this.thread.x] * gradScale);
};

/** v ← β2·v + (1 − β2)·(g·gradScale)²; 1 − β2 comes from the host (in float32, 1 − 0.999 loses 4 digits) */
const secondMomentKernel = function (this: KernelThis, v: number[], g: number[], beta2: number, oneMinusBeta2: number, gradScale: number): number {
  const gi = g[this.thread.x] * gradScale;
  return beta2 * v[this.thread.x] + oneMinusBeta2 * gi * gi;
};

/** u = (m/bc1) / (√v/bc2Sqrt + eps), + wd·w only when wd ≠ 0 (as lamb.ts) */
const updateKernel = function (
  this: KernelThis, m: number[], v: number[], w: number[], bc1: number, bc2Sqrt: number, eps: number, wd: number,
): number {
  const denom = Math.sqrt(v[this.thread.x]) / bc2Sqrt + eps;
  const u = (m[this.thread.x] / bc1) / denom;
  if (wd !== 0) { return u + wd * w[this.thread.x]; }
  return u;
};

/** ratio = ‖w‖/‖u‖ (1 when either is 0), min(ratio, 1) with trustClip; one value */
const ratioKernel = function (this: KernelThis, wNorm2: number[], uNorm2: number[], trustClip: number): number {
  const wNorm = Math.sqrt(wNorm2[0]);
  const uNorm = Math.sqrt(uNorm2[0]);
  let ratio = 1;
  if (wNorm > 0) {
    if (uNorm > 0) { ratio = wNorm / uNorm; }
  }
  if (trustClip > 0) {
    if (ratio > 1) { ratio = 1; }
  }
  return ratio;
};

/** w ← w − lr·(u·ratio) */
const weightKernel = function (this: KernelThis, w: number[], u: number[], ratio: number[], lr: number): number {
  return w[this.thread.x] - lr * (u[this.thread.x] * ratio[0]);
};

const ONE = new Float32Array([1]);

/** One LAMB step of a tensor of n values: the new weight, exp_avg (m) and exp_avg_sq (v), each owned by the caller. */
export function lambStep(
  rt: GpuRuntime, w: GpuIn, g: GpuIn, m: GpuIn, v: GpuIn, n: number, h: LambStep,
): { w: GpuArray; m: GpuArray; v: GpuArray } {
  const mNext = rt.run('lamb.m', momentKernel, n, {}, [m, g, h.beta1, h.beta3, h.gradScale]);
  const vNext = rt.run('lamb.v', secondMomentKernel, n, {}, [v, g, h.beta2, 1 - h.beta2, h.gradScale]);
  const u = rt.run('lamb.u', updateKernel, n, {}, [mNext, vNext, w, h.bc1, h.bc2Sqrt, h.eps, h.weightDecay]);
  let ratio: GpuIn = ONE;
  if (h.adapt) {
    const wNorm2 = fold(rt, 'sumSq', [n], [0], w);
    const uNorm2 = fold(rt, 'sumSq', [n], [0], u);
    ratio = rt.run('lamb.ratio', ratioKernel, 1, {}, [wNorm2, uNorm2, h.trustClip ? 1 : 0]);
    wNorm2.dispose(); uNorm2.dispose();
  }
  const wNext = rt.run('lamb.w', weightKernel, n, {}, [w, u, ratio, h.lr]);
  u.dispose();
  if (ratio !== ONE) (ratio as GpuArray).dispose();
  return { w: wNext, m: mNext, v: vNext };
}
