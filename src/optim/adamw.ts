/**
 * AdamW as torch.optim.AdamW (PyTorch 1.13, single-tensor path; timm 0.5.4's AdamW, used by SparK's ConvNeXt
 * fine-tuning, is the same algorithm). Per parameter, with its own step count t:
 *   p ← p·(1 − lr·wd)                              (decoupled weight decay)
 *   m ← β1·m + (1 − β1)·g;   v ← β2·v + (1 − β2)·g²
 *   p ← p − (lr / (1 − β1^t)) · m / (sqrt(v) / sqrt(1 − β2^t) + eps)      (eps outside the square root)
 * Defaults as PyTorch: lr 1e-3, betas (0.9, 0.999), eps 1e-8, weightDecay 1e-2. Left out: amsgrad, maximize.
 */
import type { Tensor } from '../tensor/tensor.ts';
import { adamwUpdate } from '../../kernels/cpu/optim_updates.ts';
import { Optimizer, checkAdamHyper, rounder, type ParamGroup, type ParamGroupSpec } from './optimizer.ts';

export interface AdamWHyper {
  betas: readonly [number, number];
  eps: number;
}

export interface AdamWOptions extends Partial<AdamWHyper> {
  lr?: number;
  weightDecay?: number;
}

export class AdamW extends Optimizer<AdamWHyper> {
  readonly type = 'AdamW';
  protected override readonly keepsParamStep = true;

  constructor(params: readonly Tensor[] | readonly ParamGroupSpec<AdamWHyper>[], options: AdamWOptions = {}) {
    super(params, {
      lr: options.lr ?? 1e-3,
      weightDecay: options.weightDecay ?? 1e-2,
      betas: options.betas ?? [0.9, 0.999],
      eps: options.eps ?? 1e-8,
    });
  }

  protected override validateGroup(group: ParamGroup<AdamWHyper>): void {
    super.validateGroup(group);
    checkAdamHyper(group.betas, group.eps);
  }

  step(): void {
    for (const group of this.paramGroups) {
      const { lr, weightDecay: wd, eps } = group;
      const [beta1, beta2] = group.betas;
      for (const p of group.params) {
        const g = this.gradOf(p);
        if (!g) continue;
        const w = p.data as Float32Array | Float64Array;
        const r = rounder(p.dtype);
        const s = this.stateOf(p);
        const m = this.buffer(s, p, 'exp_avg');
        const v = this.buffer(s, p, 'exp_avg_sq');
        s.step += 1;
        const bc1 = 1 - beta1 ** s.step;
        const bc2 = 1 - beta2 ** s.step;
        const stepSize = lr / bc1;
        const bc2Sqrt = Math.sqrt(bc2);
        const decay = 1 - lr * wd;
        adamwUpdate(w, g, m, v, { beta1, beta2, eps, stepSize, bc2Sqrt, decay }, r);
      }
    }
  }
}
