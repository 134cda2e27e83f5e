/**
 * The SparK training step on the CPU (forward, backward and one LAMB update with SparK's decay / no-decay groups),
 * ResNet-18-width encoder (basic [2,2,2,2], widths 64..512), 96×96 input, batch 16 (SPARKTS_BENCH_BATCH), decoder
 * width 768, at mask ratios 0.6 and 0.75, with each sparse
 * implementation ('active' computes visible positions only, 'masked' is dense-then-masked as the official code);
 * and the encoder alone (forward + backward of the sum of its stage maps), where the two differ.
 * `bench/ref/torch_spark.py` runs the official-style step in PyTorch with the same configuration.
 */
import { models, randn, manualSeed, SparK, sum, add, optim } from '../src/index.ts';
import { SparseContext, type SparseImpl } from '../models/spark/index.ts';
import { bestMs } from './timing.ts';

export type SparkRow = { name: string; impl: SparseImpl; ms: number };

/** The batch of the fast-CPU issue's step; SPARKTS_BENCH_BATCH overrides it (profiling at a smaller batch). */
export const SPARK_BATCH = Number(process.env.SPARKTS_BENCH_BATCH) || 16;

export function benchSpark(): SparkRow[] {
  const rows: SparkRow[] = [];
  const B = SPARK_BATCH;
  for (const ratio of [0.6, 0.75]) {
    for (const impl of ['active', 'masked'] as const) {
      manualSeed(0);
      const spark = new SparK(models.resnet18(), { inputSize: 96, maskRatio: ratio, decoderWidth: 768, densifyNorm: 'bn', sparseImpl: impl });
      const x = randn([B, 3, 96, 96]);
      const groups = optim.paramGroupsForSpark(spark.namedParameters())
        .map((g) => ({ ...g, weightDecay: 0.04 * g.weightDecayScale }));
      const opt = new optim.LAMB(groups, { lr: 2e-4, betas: [0.9, 0.95], maxGradNorm: 5 });
      const encoder = () => {
        const feats = spark.encoder.forwardFeatures(x, new SparseContext(spark.randomMask(B), impl));
        spark.zeroGrad();
        feats.map((f) => sum(f)).reduce((a, b) => add(a, b)).backward();
      };
      const step = () => {
        // grads zeroed in place and written into (PyTorch 1.x's zero_grad default); PyTorch runs set_to_none=True,
        // its own faster path
        spark.zeroGrad({ setToNone: false });
        spark.forward(x).loss.backward();
        opt.step();
      };
      // three warm-ups: the first steps grow the wasm memory and fault its pages in (about 3 ms per MB on the bench
      // machine); sparkts reaches its steady step time at the fourth step. Best of 5, as PyTorch's reference
      // (bench/ref/torch_spark.py): the same step measured 2035–2700 ms from one run to the next on this VM.
      rows.push({ name: `encoder mask ${ratio}`, impl, ms: bestMs(encoder, 3, 5) });
      rows.push({ name: `spark step mask ${ratio}`, impl, ms: bestMs(step, 3, 5) });
    }
  }
  return rows;
}
