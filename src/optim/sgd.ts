/**
 * SGD with momentum, as torch.optim.SGD (PyTorch 1.13, single-tensor path), per parameter i:
 *   d = g + wd·p                                   (coupled L2 weight decay, only when wd ≠ 0)
 *   buf = d on the first step, else buf = μ·buf + (1 − dampening)·d      (only when μ ≠ 0)
 *   d = nesterov ? d + μ·buf : buf
 *   p ← p − lr·d
 * Intermediates PyTorch keeps as tensors (d) are rounded to the parameter's dtype, as there.
 * SparK's pretraining 'sgd' option is momentum 0.9, nesterov (spark-spec §8.1). Left out: `maximize`.
 */
import type { Tensor } from '../tensor/tensor.ts';
import { sgdMomentumUpdate, sgdUpdate } from '../../kernels/cpu/optim_updates.ts';
import { Optimizer, rounder, type ParamGroup, type ParamGroupSpec } from './optimizer.ts';
import { backend } from '../backend/registry.ts';

export interface SGDHyper {
  momentum: number;
  dampening: number;
  nesterov: boolean;
}

export interface SGDOptions extends Partial<SGDHyper> {
  lr: number;
  weightDecay?: number;
}

export class SGD extends Optimizer<SGDHyper> {
  readonly type = 'SGD';

  constructor(params: readonly Tensor[] | readonly ParamGroupSpec<SGDHyper>[], options: SGDOptions) {
    super(params, {
      lr: options.lr,
      weightDecay: options.weightDecay ?? 0,
      momentum: options.momentum ?? 0,
      dampening: options.dampening ?? 0,
      nesterov: options.nesterov ?? false,
    });
  }

  protected override validateGroup(group: ParamGroup<SGDHyper>): void {
    super.validateGroup(group);
    if (!(group.momentum >= 0)) throw new Error(`SGD: invalid momentum ${group.momentum}`);
    if (group.nesterov && (group.momentum <= 0 || group.dampening !== 0)) {
      throw new Error('SGD: nesterov momentum requires a momentum and zero dampening');
    }
  }

  step(): void {
    for (const group of this.paramGroups) {
      const { lr, weightDecay: wd, momentum: mu, dampening, nesterov } = group;
      for (const p of group.params) {
        const g = this.gradOf(p);
        if (!g) continue;
        const w = p.data as Float32Array | Float64Array;
        const n = w.length;
        const r = rounder(p.dtype);
        if (mu === 0) {
          sgdUpdate(w, g, lr, wd, r);
          continue;
        }
        const s = this.stateOf(p);
        const first = !s.buffers.has('momentum_buffer');
        const buf = this.buffer(s, p, 'momentum_buffer');
        (backend().sgdMomentumUpdate ?? sgdMomentumUpdate)(w, g, buf, { lr, wd, mu, dampening, nesterov, first }, r);
      }
    }
  }
}
