/**
 * clipGradNorm: torch.nn.utils.clip_grad_norm_ (PyTorch 1.13, L2 norm). SparK's pretraining uses it with
 * clip 5 for the 'sgd' and 'adamw' options (LAMB clips inside its step instead, spark-spec §8.1); fine-tuning
 * leaves it off (clip −1).
 *   total = sqrt(Σ over parameters with a grad of ‖grad‖²);  coef = maxNorm / (total + 1e-6)
 *   when coef < 1 every grad is multiplied by coef, in place. Returns total (before clipping).
 * Left out: other norm types, error_if_nonfinite.
 */
import type { Tensor } from '../tensor/tensor.ts';
import type { FloatArray } from '../tensor/dtype.ts';

export function clipGradNorm(params: readonly Tensor[], maxNorm: number): number {
  let sq = 0;
  for (const p of params) {
    if (!p.grad) continue;
    const g = p.grad.data as FloatArray;
    for (let i = 0; i < g.length; i++) sq += g[i] * g[i];
  }
  const total = Math.sqrt(sq);
  const coef = maxNorm / (total + 1e-6);
  if (coef < 1) {
    for (const p of params) {
      if (!p.grad) continue;
      const g = p.grad.data as FloatArray;
      for (let i = 0; i < g.length; i++) g[i] = g[i] * coef;
    }
  }
  return total;
}
