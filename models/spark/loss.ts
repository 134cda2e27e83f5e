/**
 * SparK's reconstruction target and loss (spark-spec §5), and the reconstruction picture (§7).
 * patchify: (B, C, fh·p, fw·p) → (B, L = fh·fw, N = p·p·C), patches row-major over the grid, each patch vector
 * ordered (row in patch, column in patch, channel) with the channel fastest. The target is the input patch
 * normalised by its own mean and std = √(unbiased var + 1e-6); the prediction is not normalised. The loss is the
 * mean over N of the squared error, averaged over masked patches only.
 */
import type { Tensor } from '../../src/tensor/tensor.ts';
import type { FloatDType } from '../../src/tensor/dtype.ts';
import { add, cast, div, mul, sqrt, sub, where, logicalNot } from '../../src/ops/elementwise.ts';
import { mean, sum, variance } from '../../src/ops/reduce.ts';
import { permute, reshape } from '../../src/ops/movement.ts';

export function patchify(xBCHW: Tensor, p: number): Tensor {
  const [B, C, H, W] = xBCHW.shape;
  const fh = H / p, fw = W / p;
  const x = reshape(xBCHW, [B, C, fh, p, fw, p]);
  return reshape(permute(x, [0, 2, 4, 3, 5, 1]), [B, fh * fw, p * p * C]);
}

export function unpatchify(xBLN: Tensor, p: number, fh: number, fw: number): Tensor {
  const [B, , N] = xBLN.shape;
  const C = N / (p * p);
  const x = reshape(xBLN, [B, fh, fw, p, p, C]);
  return reshape(permute(x, [0, 5, 1, 3, 2, 4]), [B, C, fh * p, fw * p]);
}

export interface PatchStats { target: Tensor; mean: Tensor; std: Tensor }

/** Per-patch normalisation of the input patches (B, L, N): mean over N and std = √(var_unbiased + 1e-6). */
export function patchTarget(inpBLN: Tensor): PatchStats {
  const mu = mean(inpBLN, -1, true);
  const std = sqrt(add(variance(inpBLN, -1, { keepdim: true }), 1e-6));
  return { target: div(sub(inpBLN, mu), std), mean: mu, std };
}

/** Σ over masked patches of mean_N (rec − target)², divided by the number of masked patches (spec §15.2). */
export function maskedPatchLoss(recBLN: Tensor, targetBLN: Tensor, activeB1ff: Tensor): Tensor {
  const [B, L] = recBLN.shape;
  const d = sub(recBLN, targetBLN);
  const l2BL = mean(mul(d, d), 2);
  const maskedBL = cast(reshape(logicalNot(activeB1ff), [B, L]), recBLN.dtype as FloatDType);
  // official: / (count + 1e-8), where the 1e-8 vanishes in float32 unless no patch is masked (then the loss is 0)
  let count = 0; // read off the host mask: no round trip from a device
  for (const v of activeB1ff.data) if (Number(v) === 0) count++;
  return div(sum(mul(l2BL, maskedBL)), count > 0 ? count : 1e-8);
}

/** The picture: visible patches show the input, masked ones the prediction de-normalised with the input's stats. */
export function reconstruction(inpBCHW: Tensor, recBLN: Tensor, stats: PatchStats, activeB1HW: Tensor, p: number): Tensor {
  const [, , H, W] = inpBCHW.shape;
  const recBCHW = unpatchify(add(mul(recBLN, stats.std), stats.mean), p, H / p, W / p);
  return where(activeB1HW, inpBCHW, recBCHW);
}
