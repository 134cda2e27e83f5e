/**
 * LAMB exactly as spark-spec §8.4: timm 0.5.4 `timm/optim/lamb.py` (SparK's `TheSameAsTimmLAMB`), plus the
 * recorded global gradient norm. One step:
 *   1. g = sqrt(Σ over all parameters with a grad of Σ grad²)  (recorded as `globalGradNorm`); when g > maxGradNorm
 *      every grad is divided by g / maxGradNorm, **in place** (as timm's `p.grad.div_`).
 *   2. per group: step += 1 (the step counter is per group, and counts every step() call);
 *      bc1 = 1 − β1^step, bc2 = 1 − β2^step (both 1 when biasCorrection is off).
 *   3. per parameter with a grad:
 *        m ← β1·m + β3·g  (β3 = 1 − β1 with gradAveraging, else 1);   v ← β2·v + (1 − β2)·g²
 *        u = (m / bc1) / (sqrt(v) / sqrt(bc2) + eps)
 *        if wd ≠ 0: u += wd·p
 *        if wd ≠ 0 or alwaysAdapt: u *= trust ratio ‖p‖/‖u‖ (1 when either norm is 0; min(·, 1) with trustClip)
 *        p ← p − lr·u
 *      so the no-decay group (wd 0) takes a plain Adam step unless alwaysAdapt is set.
 * SparK pretraining: betas (0.9, 0.95 ResNet / 0.999 ConvNeXt), eps 1e-6, maxGradNorm 5, the rest default.
 * SparK ResNet fine-tuning: maxGradNorm 1e7, alwaysAdapt true, biasCorrection false (spark-spec §9).
 * Defaults: lr 1e-3, weightDecay 0.01, betas (0.9, 0.999), eps 1e-6, maxGradNorm **5** (SparK's pretraining value;
 * timm's own default is 1.0); pass Infinity to disable clipping.
 * The norms are accumulated in doubles for every dtype (timm accumulates the global norm in a float32 tensor).
 */
import type { Tensor } from '../tensor/tensor.ts';
import { allocateFloat, type FloatArray, type FloatDType } from '../tensor/dtype.ts';
import { Optimizer, checkAdamHyper, jsonNumber, rounder, type JsonValue, type ParamGroup, type ParamGroupSpec } from './optimizer.ts';

export interface LAMBHyper {
  betas: readonly [number, number];
  eps: number;
  biasCorrection: boolean;
  gradAveraging: boolean;
  trustClip: boolean;
  alwaysAdapt: boolean;
}

export interface LAMBOptions extends Partial<LAMBHyper> {
  lr?: number;
  weightDecay?: number;
  /** global gradient-norm clip threshold (optimizer-wide, as timm's `defaults['max_grad_norm']`) */
  maxGradNorm?: number;
}

export class LAMB extends Optimizer<LAMBHyper> {
  readonly type = 'LAMB';
  maxGradNorm: number;
  /** The global gradient norm of the last step, before clipping (SparK logs it as `orig_norm`). */
  globalGradNorm = 0;
  /** Per group: the number of step() calls so far (timm's group['step']). */
  groupSteps: number[] = [];
  private scratch: Record<FloatDType, FloatArray> = { float32: new Float32Array(0), float64: new Float64Array(0) };

  constructor(params: readonly Tensor[] | readonly ParamGroupSpec<LAMBHyper>[], options: LAMBOptions = {}) {
    super(params, {
      lr: options.lr ?? 1e-3,
      weightDecay: options.weightDecay ?? 0.01,
      betas: options.betas ?? [0.9, 0.999],
      eps: options.eps ?? 1e-6,
      biasCorrection: options.biasCorrection ?? true,
      gradAveraging: options.gradAveraging ?? true,
      trustClip: options.trustClip ?? false,
      alwaysAdapt: options.alwaysAdapt ?? false,
    });
    this.maxGradNorm = options.maxGradNorm ?? 5;
    if (!(this.maxGradNorm > 0)) throw new Error(`LAMB: invalid maxGradNorm ${this.maxGradNorm}`);
  }

  protected override validateGroup(group: ParamGroup<LAMBHyper>): void {
    super.validateGroup(group);
    checkAdamHyper(group.betas, group.eps);
  }

  private scratchFor(dtype: FloatDType, n: number): FloatArray {
    if (this.scratch[dtype].length < n) this.scratch[dtype] = allocateFloat(dtype, n);
    return this.scratch[dtype];
  }

  step(): void {
    // 1. global grad norm and clipping factor (timm: clip = g / max when g > max, else 1; grads divided by it)
    let sq = 0;
    for (const group of this.paramGroups) {
      for (const p of group.params) {
        const g = this.gradOf(p);
        if (!g) continue;
        for (let i = 0; i < g.length; i++) sq += g[i] * g[i];
      }
    }
    const norm = Math.sqrt(sq);
    this.globalGradNorm = norm;
    const clip = norm > this.maxGradNorm ? norm / this.maxGradNorm : 1;

    this.paramGroups.forEach((group, gi) => {
      const { lr, weightDecay: wd, eps, biasCorrection, gradAveraging, trustClip, alwaysAdapt } = group;
      const [beta1, beta2] = group.betas;
      const beta3 = gradAveraging ? 1 - beta1 : 1;
      const step = (this.groupSteps[gi] ?? 0) + 1;
      this.groupSteps[gi] = step;
      const bc1 = biasCorrection ? 1 - beta1 ** step : 1;
      const bc2Sqrt = Math.sqrt(biasCorrection ? 1 - beta2 ** step : 1);

      for (const p of group.params) {
        const g = this.gradOf(p);
        if (!g) continue;
        const w = p.data as Float32Array | Float64Array;
        const n = w.length;
        const r = rounder(p.dtype);
        if (clip !== 1) for (let i = 0; i < n; i++) g[i] = g[i] / clip;
        const s = this.stateOf(p);
        const m = this.buffer(s, p, 'exp_avg');
        const v = this.buffer(s, p, 'exp_avg_sq');
        const u = this.scratchFor(p.dtype as FloatDType, n);
        let wNorm2 = 0, uNorm2 = 0;
        for (let i = 0; i < n; i++) {
          const gi = g[i];
          m[i] = beta1 * m[i] + beta3 * gi;
          v[i] = beta2 * v[i] + (1 - beta2) * gi * gi;
          const denom = r(r(Math.sqrt(v[i]) / bc2Sqrt) + eps);
          let ui = r(r(m[i] / bc1) / denom);
          if (wd !== 0) ui = r(ui + wd * w[i]);
          u[i] = ui;
          wNorm2 += w[i] * w[i];
          uNorm2 += ui * ui;
        }
        let ratio = 1;
        if (wd !== 0 || alwaysAdapt) {
          const wNorm = Math.sqrt(wNorm2), uNorm = Math.sqrt(uNorm2);
          ratio = wNorm > 0 && uNorm > 0 ? r(wNorm) / r(uNorm) : 1;
          if (trustClip) ratio = Math.min(ratio, 1);
          ratio = r(ratio);
        }
        for (let i = 0; i < n; i++) w[i] = w[i] - lr * r(u[i] * ratio);
      }
    });
  }

  protected override extraState(): { [key: string]: JsonValue } {
    return {
      groupSteps: this.paramGroups.map((_, i) => this.groupSteps[i] ?? 0),
      globalGradNorm: Number.isFinite(this.globalGradNorm) ? this.globalGradNorm : String(this.globalGradNorm),
      maxGradNorm: Number.isFinite(this.maxGradNorm) ? this.maxGradNorm : String(this.maxGradNorm),
    };
  }

  protected override loadExtraState(extra: { [key: string]: JsonValue }): void {
    const steps = Array.isArray(extra.groupSteps) ? extra.groupSteps : [];
    this.groupSteps = this.paramGroups.map((_, i) => jsonNumber(steps[i], 0));
    this.globalGradNorm = jsonNumber(extra.globalGradNorm, 0);
    this.maxGradNorm = jsonNumber(extra.maxGradNorm, this.maxGradNorm);
  }
}
