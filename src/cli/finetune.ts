/**
 * `sparkts finetune`: classification from a SparK-pretrained encoder (or from random init, the baseline), with
 * top-1 on the held-out set after each epoch (spark-spec §9: AdamW with layer-wise lr decay, warmup + cosine lr,
 * constant weight decay, label smoothing 0.1). `--labels-per-class N` keeps N labelled images per class
 * (a seeded choice), for semi-supervised tables. Checkpoints and --resume as in pretrain.
 */
import { join } from 'node:path';
import { manualSeed, defaultGenerator } from '../tensor/random.ts';
import type { Tensor } from '../tensor/tensor.ts';
import { noGrad } from '../autograd/mode.ts';
import { crossEntropy } from '../ops/nn.ts';
import { argmax } from '../ops/reduce.ts';
import { DataLoader } from '../data/loader.ts';
import { subset, type Dataset } from '../data/datasets.ts';
import { pretrainTransform, evalTransform } from '../data/transforms.ts';
import { derivedGenerator } from '../data/loader.ts';
import { AdamW } from '../optim/adamw.ts';
import { LAMB } from '../optim/lamb.ts';
import type { Optimizer } from '../optim/optimizer.ts';
import { layerDecayGroups } from '../optim/groups.ts';
import { finetuneSchedule, lrForBatch, applyLrWd } from '../optim/schedule.ts';
import { loadSafetensors, loadTorch, stateDictFrom } from '../io/index.ts';
import { parseFlags, UsageError, type FlagSpecs } from './args.ts';
import { MODEL_NAMES, modelChoice, openDataset, skippedCount } from './choices.ts';
import { Progress } from './progress.ts';
import { ensureDir, saveConfig, saveOptimizer, loadOptimizer, saveTensors, MetricsLog, resolveRun, withStopSignal } from './checkpoint.ts';
import { StateDictError, type Module } from '../nn/module.ts';

export const FINETUNE_SUMMARY = 'classification fine-tuning from a pretrained encoder (or from scratch), top-1 every epoch.';

export const FINETUNE_FLAGS: FlagSpecs = {
  init: { kind: 'string', help: 'pretrained weights: a run folder, encoder.safetensors, spark.safetensors or a PyTorch .pth (absent: random init)' },
  data: { kind: 'string', help: "'embedded', 'fashion-mnist', or a folder with one sub-folder per class", default: 'embedded' },
  'val-data': { kind: 'string', help: 'held-out folder for a --data folder (default: the test split of embedded / fashion-mnist)' },
  'labels-per-class': { kind: 'int', help: 'keep this many labelled training images per class (0: all)', default: 0, min: 0 },
  model: { kind: 'string', help: 'encoder', choices: MODEL_NAMES, default: 'resnet-tiny' },
  'input-size': { kind: 'int', help: "image side in pixels (the model's default if absent)", min: 8 },
  epochs: { kind: 'int', help: 'epochs', default: 10, min: 1 },
  steps: { kind: 'int', help: 'stop after this many optimizer steps in total (0: run every epoch)', default: 0, min: 0 },
  'batch-size': { kind: 'int', help: 'images per step', default: 64, min: 1 },
  'base-lr': { kind: 'float', help: 'lr = base-lr · batch-size / 256', default: 2e-3, min: 0 },
  'warmup-epochs': { kind: 'float', help: 'linear warmup, in epochs', default: 1, min: 0 },
  'weight-decay': { kind: 'float', help: 'weight decay (constant)', default: 0.05, min: 0 },
  'layer-decay': { kind: 'float', help: 'layer-wise lr decay (1: none)', default: 0.7, min: 0, max: 1 },
  'label-smoothing': { kind: 'float', help: 'label smoothing', default: 0.1, min: 0, max: 1 },
  opt: { kind: 'string', help: 'optimizer', choices: ['adamw', 'lamb'], default: 'adamw' },
  'eval-every': { kind: 'int', help: 'evaluate top-1 every N epochs (and always after the last)', default: 1, min: 1 },
  seed: { kind: 'int', help: 'random seed', default: 0, min: 0 },
  out: { kind: 'string', help: 'run folder', default: 'runs/finetune' },
  resume: { kind: 'bool', help: 'continue the run in --out from its last checkpoint', default: false },
  help: { kind: 'bool', help: 'show this help', default: false },
};

const SHAPE_FLAGS = ['model', 'input-size'];

function labelsOf(ds: Dataset): number[] {
  const withTargets = ds as Dataset & { targets?: ArrayLike<number> | null };
  if (withTargets.targets) return Array.from(withTargets.targets);
  return Array.from({ length: ds.length }, (_, i) => {
    const label = ds.get(i).label;
    if (label === null) throw new UsageError('--data: fine-tuning needs labels (one sub-folder per class)');
    return label;
  });
}

/** N images per class, chosen by a seeded shuffle. */
function labelsPerClass(ds: Dataset, n: number, seed: number): Dataset {
  const labels = labelsOf(ds);
  const order = derivedGenerator(0x6c706300, seed).permutation(ds.length);
  const taken = new Map<number, number>();
  const keep: number[] = [];
  for (const i of order) {
    const c = taken.get(labels[i]) ?? 0;
    if (c < n) { keep.push(i); taken.set(labels[i], c + 1); }
  }
  return subset(ds, keep.sort((a, b) => a - b));
}

/** Weights for the encoder from a run folder, a safetensors file (bare encoder or whole SparK) or a .pth. */
export function loadEncoderWeights(path: string): Record<string, Tensor> {
  let tensors: Record<string, Tensor>;
  if (path.endsWith('.pth') || path.endsWith('.pt')) tensors = stateDictFrom(loadTorch(path), path).tensors;
  else tensors = loadSafetensors(path.endsWith('.safetensors') ? path : join(path, 'encoder.safetensors'));
  const prefix = 'sparse_encoder.sp_cnn.';
  if (Object.keys(tensors).some((k) => k.startsWith(prefix))) {
    tensors = Object.fromEntries(Object.entries(tensors).filter(([k]) => k.startsWith(prefix)).map(([k, t]) => [k.slice(prefix.length), t]));
  }
  return tensors;
}

function topOne(model: Module & { forward(x: Tensor): Tensor }, loader: DataLoader): number {
  let correct = 0, total = 0;
  model.eval();
  noGrad(() => {
    for (const b of loader) {
      const pred = argmax(model.forward(b.images), 1).data as BigInt64Array;
      const labels = b.labels!.data as BigInt64Array;
      for (let i = 0; i < pred.length; i++) if (pred[i] === labels[i]) correct++;
      total += pred.length;
    }
  });
  model.train();
  return correct / total;
}

export async function finetune(argv: readonly string[]): Promise<number> {
  const { flags, resumed } = resolveRun('finetune', argv, parseFlags(argv, FINETUNE_FLAGS), SHAPE_FLAGS);
  const out = flags.out as string;
  const choice = modelChoice(flags.model as string);
  const inputSize = (flags['input-size'] as number | undefined) ?? choice.inputSize;
  const batchSize = flags['batch-size'] as number;
  const seed = flags.seed as number;
  ensureDir(out);

  const dataSpec = flags.data as string;
  let train = openDataset(dataSpec, 'train');
  const held = flags['val-data'] ? openDataset(flags['val-data'] as string, 'test')
    : dataSpec === 'embedded' || dataSpec === 'fashion-mnist' ? openDataset(dataSpec, 'test') : null;
  if (!held) throw new UsageError('--val-data is needed with a --data folder');
  const classes = train.classes?.length ?? 0;
  if (classes < 2) throw new UsageError(`--data: fine-tuning needs at least 2 classes, found ${classes}`);
  if ((flags['labels-per-class'] as number) > 0) train = labelsPerClass(train, flags['labels-per-class'] as number, seed);
  const loader = new DataLoader(train, { batchSize: Math.min(batchSize, train.length), shuffle: true, dropLast: train.length >= batchSize, transform: pretrainTransform(inputSize), seed, prefetch: 2 });
  const evalLoader = new DataLoader(held, { batchSize: 250, shuffle: false, transform: evalTransform(inputSize, 1), prefetch: 0 });
  const itersPerEpoch = loader.length;
  const epochs = flags.epochs as number;
  const totalSteps = (flags.steps as number) || epochs * itersPerEpoch;

  manualSeed(seed);
  const model = choice.build({ numClasses: classes });
  const progress = new Progress(totalSteps);
  if (flags.init && !resumed) {
    let result;
    try {
      result = model.loadStateDict(loadEncoderWeights(flags.init as string), { strict: false });
    } catch (e) {
      if (!(e instanceof StateDictError)) throw e;
      throw new UsageError(`--init ${flags.init}: does not match --model ${flags.model} (${e.message})`);
    }
    const head = /^(fc|head|norm)\./;
    const missingEncoder = result.missingKeys.filter((k) => !head.test(k));
    if (missingEncoder.length || result.unexpectedKeys.length) {
      throw new UsageError(`--init ${flags.init}: does not match --model ${flags.model} (missing ${missingEncoder.slice(0, 5).join(', ') || 'none'}; unexpected ${result.unexpectedKeys.slice(0, 5).join(', ') || 'none'})`);
    }
    progress.message(`loaded ${flags.init}: new ${result.missingKeys.join(', ')}`);
  }
  const groups = layerDecayGroups(model.namedParameters(), { model: choice.family, decay: flags['layer-decay'] as number });
  const opt = (flags.opt === 'lamb'
    ? new LAMB(groups, { weightDecay: 0, maxGradNorm: 1e7, alwaysAdapt: true, biasCorrection: false })
    : new AdamW(groups, { weightDecay: 0 })) as unknown as Optimizer<object>;
  const schedule = finetuneSchedule({ peakLr: lrForBatch(flags['base-lr'] as number, batchSize), warmupEpochs: flags['warmup-epochs'] as number, epochs, itersPerEpoch, wd: flags['weight-decay'] as number });

  let position = { epoch: 0, batch: 0, step: 0 };
  let best = 0;
  let lastTop1 = NaN;
  if (resumed) {
    model.loadStateDict(loadSafetensors(join(out, 'model.safetensors')), { strict: true });
    loadOptimizer(join(out, 'optimizer.safetensors'), opt);
    defaultGenerator.setState(resumed.generators.default);
    position = resumed.position;
    best = resumed.bestTop1 ?? 0;
  }
  const metrics = new MetricsLog(out, position.step);
  progress.message(`finetune ${flags.model} on ${dataSpec}: ${train.length} labelled images, ${held.length} held out, ${classes} classes, ${flags.init ? `init ${flags.init}` : 'random init'}${skippedCount(train) + skippedCount(held) ? `; ${skippedCount(train) + skippedCount(held)} unreadable files skipped` : ''}`);
  const save = (pos: typeof position) => {
    saveTensors(out, 'model.safetensors', model.stateDict());
    saveOptimizer(join(out, 'optimizer.safetensors'), opt);
    saveConfig(out, { command: 'finetune', flags: { ...flags, resume: false }, position: pos, generators: { default: defaultGenerator.getState() }, bestTop1: best });
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
        const loss = crossEntropy(model.forward(b.images), b.labels!, { labelSmoothing: flags['label-smoothing'] as number });
        const value = loss.item();
        if (!Number.isFinite(value)) {
          progress.message(`loss became ${value} at step ${step + 1}; stopping. The last good checkpoint is in ${out} (step ${position.step}).`);
          return 1;
        }
        loss.backward();
        opt.step();
        step++;
        batch = b.batch + 1;
        const imagesPerSecond = (1000 * b.images.shape[0]) / (performance.now() - started);
        metrics.append({ step, epoch, batch: b.batch, loss: value, lr, wd, imagesPerSecond });
        progress.update(step, epoch, { loss: value, lr, imagesPerSecond });
        if (stopRequested() || step >= totalSteps) break;
        await new Promise((resolve) => setImmediate(resolve));
      }
      const epochDone = batch >= itersPerEpoch;
      const finished = step >= totalSteps || (epochDone && epoch + 1 >= epochs);
      if ((epochDone && (epoch + 1) % (flags['eval-every'] as number) === 0) || finished) {
        const top1 = topOne(model, evalLoader);
        best = Math.max(best, top1);
        metrics.append({ step, epoch, top1, best });
        lastTop1 = top1;
        progress.message(`epoch ${epoch}: top-1 ${(100 * top1).toFixed(2)}% (best ${(100 * best).toFixed(2)}%)`);
      }
      if (epochDone) { epoch++; batch = 0; }
      position = { epoch, batch, step };
      save(position);
      if (stopRequested()) {
        progress.message(`interrupted: saved the run at step ${step} in ${out}; continue with --resume`);
        return 130;
      }
    }
    progress.end();
    progress.message(`done: ${step} steps, final top-1 ${(100 * lastTop1).toFixed(2)}% (best ${(100 * best).toFixed(2)}%); model.safetensors in ${out}`);
    return 0;
  });
}
