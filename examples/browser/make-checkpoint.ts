/**
 * Writes the browser example's assets: a tiny SparK pretrained for a short while on the embedded Fashion-MNIST
 * subset (examples/browser/assets/spark-tiny.safetensors, official SparK keys, its shape and training summary in
 * `__metadata__`) and a few test-split images as small PNGs (assets/sample-*.png).
 *
 *   node --import tsx examples/browser/make-checkpoint.ts [--steps 150] [--batch-size 32] [--seed 0]
 *
 * The recipe is `sparkts pretrain`'s (LAMB over SparK's no-decay groups, warmup + cosine lr, rising weight
 * decay, RandomResizedCrop + flip), on a model a quarter of resnet-tiny's size (demo.ts DEMO_CONFIG) so that the
 * float32 checkpoint stays near 1 MB. About 2–3 minutes on two cores. Not here: resuming, metrics files
 * (use the CLI for real runs).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { manualSeed, Generator } from '../../src/tensor/random.ts';
import { DataLoader } from '../../src/data/loader.ts';
import { FashionMnist } from '../../src/data/datasets.ts';
import { pretrainTransform } from '../../src/data/transforms.ts';
import { encodePng } from '../../src/data/decode.ts';
import { LAMB } from '../../src/optim/lamb.ts';
import { paramGroupsForSpark } from '../../src/optim/groups.ts';
import { pretrainSchedule, lrForBatch, applyLrWd } from '../../src/optim/schedule.ts';
import { safetensorsFromTensors } from '../../src/io/index.ts';
import { DEMO_CONFIG, buildSpark } from './demo.ts';

const { values } = parseArgs({
  options: {
    steps: { type: 'string', default: '150' },
    'batch-size': { type: 'string', default: '32' },
    'base-lr': { type: 'string', default: '0.2' },
    seed: { type: 'string', default: '0' },
  },
});
const steps = Number(values.steps);
const batchSize = Number(values['batch-size']);
const baseLr = Number(values['base-lr']);
const seed = Number(values.seed);

const here = fileURLToPath(new URL('.', import.meta.url));
const assets = join(here, 'assets');
const embedded = fileURLToPath(new URL('../../src/data/embedded/', import.meta.url));
mkdirSync(assets, { recursive: true });

// the bundled samples: the first test image of a few classes, as 28×28 grey-in-RGB PNGs
const test = new FashionMnist(embedded, 'test');
const SAMPLE_CLASSES = [0, 7, 8, 9]; // T-shirt/top, sneaker, bag, ankle boot
for (const [k, cls] of SAMPLE_CLASSES.entries()) {
  let i = 0;
  while (test.get(i).label !== cls) i++;
  writeFileSync(join(assets, `sample-${k}.png`), encodePng(test.get(i).image));
}

const train = new FashionMnist(embedded, 'train');
const loader = new DataLoader(train, { batchSize, shuffle: true, fillLast: true, transform: pretrainTransform(DEMO_CONFIG.inputSize), seed, prefetch: 0 });
manualSeed(seed);
// the masks drawn during training come from their own generator, as `sparkts pretrain` does
const spark = buildSpark(DEMO_CONFIG, new Generator(seed + 1));
const opt = new LAMB(paramGroupsForSpark(spark.namedParameters()), { betas: [0.9, 0.95], weightDecay: 0, maxGradNorm: 5 });
const epochs = Math.ceil(steps / loader.length);
const schedule = pretrainSchedule({
  peakLr: lrForBatch(baseLr, batchSize), warmupEpochs: 0.1 * steps / loader.length, epochs: steps / loader.length, itersPerEpoch: loader.length,
  wd: 0.04, wdEnd: 0.2,
});

const started = performance.now();
const losses: number[] = [];
let step = 0;
spark.train();
for (let epoch = 0; epoch < epochs && step < steps; epoch++) {
  loader.setEpoch(epoch);
  for (const b of loader) {
    if (step >= steps) break;
    const { lr, wd } = schedule(step);
    applyLrWd(opt, lr, wd);
    opt.zeroGrad();
    const { loss } = spark.forward(b.images);
    const value = loss.item();
    if (!Number.isFinite(value)) throw new Error(`loss became ${value} at step ${step + 1}`);
    loss.backward();
    opt.step();
    losses.push(value);
    step++;
    if (step % 10 === 0 || step === 1) {
      const recent = losses.slice(-10);
      process.stderr.write(`step ${step}/${steps}  loss ${(recent.reduce((a, v) => a + v, 0) / recent.length).toFixed(4)}  ${((performance.now() - started) / 1000).toFixed(0)} s\n`);
    }
  }
}
spark.eval();

const mean = (xs: number[]) => xs.reduce((a, v) => a + v, 0) / xs.length;
const summary = {
  steps, batchSize, baseLr, seed, data: 'embedded Fashion-MNIST train (2,000 images)',
  lossFirst10: Number(mean(losses.slice(0, 10)).toFixed(4)), lossLast10: Number(mean(losses.slice(-10)).toFixed(4)),
  seconds: Math.round((performance.now() - started) / 1000),
};
const bytes = safetensorsFromTensors(spark.stateDict(), { config: JSON.stringify(DEMO_CONFIG), training: JSON.stringify(summary) });
const out = join(assets, 'spark-tiny.safetensors');
writeFileSync(out, bytes);
process.stderr.write(`wrote ${out} (${(bytes.length / 1024).toFixed(0)} KiB, ${spark.numParameters().toLocaleString()} parameters): ${JSON.stringify(summary)}\n`);
