/**
 * The SparK sparse encoder's cost against its visible fraction: forward + backward (of the sum of the stage maps)
 * of the ResNet-18-width encoder (basic [2,2,2,2], widths 64..512), batch 8, at visible fractions 0.4, 0.6 and
 * 0.75 (mask ratios 0.6, 0.4, 0.25), with sparseImpl 'active' (only visible positions are computed) and
 * 'masked' (dense, then masked, as the official code). The input is 160×160, a 5×5 patch grid, so the fractions
 * are nearly exact: 10, 15 and round(18.75) = 19 of 25 cells (0.40, 0.60, 0.76). bench/spark.ts has the same
 * encoder at 96×96 beside PyTorch. Left out: printing (the runner does it).
 */
import { models, randn, manualSeed, SparK, sum, add } from '../src/index.ts';
import { SparseContext, type SparseImpl } from '../models/spark/index.ts';
import { bestMs } from './timing.ts';

export type EncoderRow = { maskRatio: number; visible: number; impl: SparseImpl; ms: number };

export const ENCODER_SWEEP = { size: 160, batch: 8, maskRatios: [0.6, 0.4, 0.25] };


export function benchSparseEncoder(): EncoderRow[] {
  const { size, batch, maskRatios } = ENCODER_SWEEP;
  const rows: EncoderRow[] = [];
  for (const maskRatio of maskRatios) {
    for (const impl of ['active', 'masked'] as const) {
      manualSeed(0);
      const spark = new SparK(models.resnet18(), { inputSize: size, maskRatio, decoderWidth: 768, densifyNorm: 'bn', sparseImpl: impl });
      const x = randn([batch, 3, size, size]);
      const visible = spark.lenKeep / (spark.grid[0] * spark.grid[1]);
      const run = () => {
        const feats = spark.encoder.forwardFeatures(x, new SparseContext(spark.randomMask(batch), impl));
        spark.zeroGrad();
        feats.map((f) => sum(f)).reduce((a, b) => add(a, b)).backward();
      };
      rows.push({ maskRatio, visible, impl, ms: bestMs(run, 1, 5) });
    }
  }
  return rows;
}
