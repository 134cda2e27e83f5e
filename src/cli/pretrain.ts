/**
 * `sparkts pretrain`: SparK pretraining from the command line (spark-spec §8). LAMB (β2 0.95 for ResNets, 0.999
 * for ConvNeXts) over SparK's no-decay groups, lr = base·batch/256 with warmup and cosine, weight decay rising
 * 0.04 → 0.2, RandomResizedCrop(0.67–1) + flip; a checkpoint at every epoch, on Ctrl-C and at --steps; --resume
 * continues the exact loss sequence (data order, augmentation, masks and drop path are all reproducible from
 * the saved position and generator states).
 */
import { join } from 'node:path';
import { Generator, manualSeed, defaultGenerator } from '../tensor/random.ts';
import { noGrad } from '../autograd/mode.ts';
import { SparK } from '../../models/spark/spark.ts';
import { DataLoader } from '../data/loader.ts';
import { pretrainTransform, evalTransform, IMAGENET_MEAN, IMAGENET_STD } from '../data/transforms.ts';
import { encodePng } from '../data/decode.ts';
import { LAMB } from '../optim/lamb.ts';
import { AdamW } from '../optim/adamw.ts';
import { SGD } from '../optim/sgd.ts';
import type { Optimizer } from '../optim/optimizer.ts';
import { paramGroupsForSpark } from '../optim/groups.ts';
import { clipGradNorm } from '../optim/clip.ts';
import { pretrainSchedule, lrForBatch, applyLrWd } from '../optim/schedule.ts';
import { writeFileAtomic } from '../io/index.ts';
import { parseFlags, type FlagSpecs } from './args.ts';
import { MODEL_NAMES, modelChoice, openDataset, skippedCount } from './choices.ts';
import { Progress } from './progress.ts';
import { reconstructionGrid } from './pictures.ts';
import { ensureDir, saveConfig, saveOptimizer, loadOptimizer, saveTensors, MetricsLog, resolveRun, withStopSignal } from './checkpoint.ts';
import { loadSafetensors } from '../io/index.ts';

export const PRETRAIN_SUMMARY = 'SparK pretraining on unlabeled images; checkpoints in --out at every epoch.';

export const PRETRAIN_FLAGS: FlagSpecs = {
  data: { kind: 'string', help: "'embedded' (the bundled Fashion-MNIST subset), 'fashion-mnist' (Debian's dataset-fashion-mnist) or a folder of images", default: 'embedded' },
  model: { kind: 'string', help: 'encoder', choices: MODEL_NAMES, default: 'resnet-tiny' },
  'input-size': { kind: 'int', help: "image side in pixels (the model's default if absent)", min: 8 },
  'mask-ratio': { kind: 'float', help: 'fraction of patches masked', default: 0.6, min: 0, max: 0.99 },
  'decoder-width': { kind: 'int', help: "decoder width (the model's default if absent)", min: 32 },
  epochs: { kind: 'int', help: 'epochs', default: 1, min: 1 },
  steps: { kind: 'int', help: 'stop after this many optimizer steps in total (0: run every epoch)', default: 0, min: 0 },
  'batch-size': { kind: 'int', help: 'images per step', default: 32, min: 1 },
  'base-lr': { kind: 'float', help: 'lr = base-lr · batch-size / 256', default: 2e-4, min: 0 },
  'warmup-epochs': { kind: 'float', help: 'linear warmup, in epochs', default: 0.5, min: 0 },
  'weight-decay': { kind: 'float', help: 'weight decay at the start', default: 0.04, min: 0 },
  'weight-decay-end': { kind: 'float', help: 'weight decay at the end (cosine rise)', default: 0.2, min: 0 },
  opt: { kind: 'string', help: 'optimizer', choices: ['lamb', 'adamw', 'sgd'], default: 'lamb' },
  seed: { kind: 'int', help: 'random seed (data order, augmentation, masks, init)', default: 0, min: 0 },
  out: { kind: 'string', help: 'run folder', default: 'runs/pretrain' },
  resume: { kind: 'bool', help: 'continue the run in --out from its last checkpoint', default: false },
  help: { kind: 'bool', help: 'show this help', default: false },
};

/** Flags that fix the model's shape: a resumed run must keep them. */
const SHAPE_FLAGS = ['model', 'input-size', 'decoder-width'];

function buildOptimizer(name: string, spark: SparK, family: 'resnet' | 'convnext'): Optimizer<object> {
  const groups = paramGroupsForSpark(spark.namedParameters());
  if (name === 'adamw') return new AdamW(groups, { betas: [0.9, family === 'resnet' ? 0.95 : 0.999], weightDecay: 0 }) as unknown as Optimizer<object>;
  if (name === 'sgd') return new SGD(groups, { lr: 0, momentum: 0.9, nesterov: true, weightDecay: 0 }) as unknown as Optimizer<object>;
  return new LAMB(groups, { betas: [0.9, family === 'resnet' ? 0.95 : 0.999], weightDecay: 0, maxGradNorm: 5 }) as unknown as Optimizer<object>;
}

export async function pretrain(argv: readonly string[]): Promise<number> {
  const { flags, resumed } = resolveRun('pretrain', argv, parseFlags(argv, PRETRAIN_FLAGS), SHAPE_FLAGS);
  const out = flags.out as string;
  const choice = modelChoice(flags.model as string);
  const inputSize = (flags['input-size'] as number | undefined) ?? choice.inputSize;
  const decoderWidth = (flags['decoder-width'] as number | undefined) ?? choice.decoderWidth;
  const batchSize = flags['batch-size'] as number;
  const seed = flags.seed as number;
  ensureDir(out);

  const dataset = openDataset(flags.data as string, 'train');
  const loader = new DataLoader(dataset, { batchSize, shuffle: true, fillLast: true, transform: pretrainTransform(inputSize), seed, prefetch: 2 });
  const itersPerEpoch = loader.length;
  const epochs = flags.epochs as number;
  const totalSteps = (flags.steps as number) || epochs * itersPerEpoch;

  manualSeed(seed);
  const maskGenerator = new Generator(seed + 1);
  const encoder = choice.build({});
  const spark = new SparK(encoder, { inputSize, maskRatio: flags['mask-ratio'] as number, decoderWidth, densifyNorm: choice.densifyNorm, generator: maskGenerator });
  const opt = buildOptimizer(flags.opt as string, spark, choice.family);
  const schedule = pretrainSchedule({
    peakLr: lrForBatch(flags['base-lr'] as number, batchSize), warmupEpochs: flags['warmup-epochs'] as number, epochs, itersPerEpoch,
    wd: flags['weight-decay'] as number, wdEnd: flags['weight-decay-end'] as number,
  });

  let position = { epoch: 0, batch: 0, step: 0 };
  if (resumed) {
    spark.loadStateDict(loadSafetensors(join(out, 'spark.safetensors')), { strict: true });
    loadOptimizer(join(out, 'optimizer.safetensors'), opt);
    maskGenerator.setState(resumed.generators.mask);
    defaultGenerator.setState(resumed.generators.default);
    position = resumed.position;
  }
  const metrics = new MetricsLog(out, position.step);
  const progress = new Progress(totalSteps);
  progress.message(`pretrain ${flags.model} on ${flags.data}: ${dataset.length} images, ${itersPerEpoch} steps/epoch, ${spark.numParameters().toLocaleString()} parameters, writing to ${out}${resumed ? ` (resumed at step ${position.step})` : ''}${skippedCount(dataset) ? `; ${skippedCount(dataset)} unreadable files skipped` : ''}`);

  const save = (pos: typeof position) => {
    saveTensors(out, 'spark.safetensors', spark.stateDict());
    saveTensors(out, 'encoder.safetensors', spark.encoderStateDict());
    saveOptimizer(join(out, 'optimizer.safetensors'), opt);
    saveConfig(out, { command: 'pretrain', flags: { ...flags, resume: false }, position: pos, generators: { mask: maskGenerator.getState(), default: defaultGenerator.getState() } });
  };
  const picture = () => {
    const view = new DataLoader(dataset, { batchSize: Math.min(8, dataset.length), shuffle: false, transform: evalTransform(inputSize, 1), prefetch: 0 });
    const images = view.getBatch(0).images;
    spark.eval();
    const shown = noGrad(() => spark.forward(images, { active: spark.randomMask(images.shape[0], new Generator(seed + 7)) }));
    spark.train();
    writeFileAtomic(join(out, 'reconstruction.png'), encodePng(reconstructionGrid([shown.inp, shown.masked, shown.recOrInp], IMAGENET_MEAN, IMAGENET_STD)));
  };

  return withStopSignal(async (stopRequested) => {
    let { epoch, batch, step } = position;
    while (step < totalSteps && epoch < epochs) {
      loader.setEpoch(epoch);
      for await (const b of loader.stream(batch)) {
        const started = performance.now();
        const { lr, wd } = schedule(step);
        applyLrWd(opt, lr, wd);
        opt.zeroGrad({ setToNone: false }); // every parameter gets a gradient each step: the same update, and the buffers are reused
        const { loss } = spark.forward(b.images);
        const value = loss.item();
        if (!Number.isFinite(value)) {
          progress.message(`loss became ${value} at step ${step + 1}; stopping. The last good checkpoint is in ${out} (step ${position.step}).`);
          return 1;
        }
        loss.backward();
        const gradNorm = flags.opt === 'lamb' ? NaN : clipGradNorm(opt.paramGroups.flatMap((g) => g.params), 5);
        opt.step();
        step++;
        batch = b.batch + 1;
        const ms = performance.now() - started;
        const imagesPerSecond = (1000 * b.images.shape[0]) / ms;
        metrics.append({ step, epoch, batch: b.batch, loss: value, lr, wd, gradNorm: flags.opt === 'lamb' ? (opt as unknown as LAMB).globalGradNorm : gradNorm, imagesPerSecond, ms });
        progress.update(step, epoch, { loss: value, lr, imagesPerSecond });
        if (stopRequested() || step >= totalSteps) break;
        await new Promise((resolve) => setImmediate(resolve)); // let Ctrl-C be seen between steps
      }
      if (batch >= itersPerEpoch) {
        epoch++;
        batch = 0;
      }
      position = { epoch, batch, step };
      save(position);
      picture();
      if (stopRequested()) {
        progress.message(`interrupted: saved the run at step ${step} in ${out}; continue with --resume`);
        return 130;
      }
    }
    progress.end();
    progress.message(`done: ${step} steps; checkpoint, encoder.safetensors and reconstruction.png in ${out}`);
    return 0;
  });
}
