/**
 * `sparkts reconstruct`: pictures from a pretraining run, as the official notebook draws them: each row is
 * original | masked | reconstruction (visible patches from the input, masked ones predicted), in eval mode.
 */
import { join } from 'node:path';
import { readdirSync, statSync } from 'node:fs';
import { Generator } from '../tensor/random.ts';
import { noGrad } from '../autograd/mode.ts';
import { SparK } from '../../models/spark/spark.ts';
import { DataLoader } from '../data/loader.ts';
import { evalTransform, IMAGENET_MEAN, IMAGENET_STD } from '../data/transforms.ts';
import { encodePng } from '../data/decode.ts';
import { loadSafetensors, loadTorch, stateDictFrom, writeFileAtomic } from '../io/index.ts';
import { parseFlags, UsageError, type FlagSpecs } from './args.ts';
import { modelChoice, openDataset } from './choices.ts';
import { loadConfig } from './checkpoint.ts';
import { reconstructionGrid } from './pictures.ts';

export const RECONSTRUCT_SUMMARY = 'original | masked | reconstruction grid from a pretraining run.';

export const RECONSTRUCT_FLAGS: FlagSpecs = {
  ckpt: { kind: 'string', help: "a pretraining run folder, or an official SparK '*_withdecoder_*.pth' (then give --model)" },
  model: { kind: 'string', help: 'the encoder of a .pth checkpoint (e.g. resnet50, convnext-small)' },
  images: { kind: 'string', help: "a folder of images, or 'embedded' (its test images)", default: 'embedded' },
  'mask-ratio': { kind: 'float', help: "fraction of patches masked (the run's if absent)", min: 0, max: 0.99 },
  count: { kind: 'int', help: 'rows (images)', default: 8, min: 1, max: 64 },
  seed: { kind: 'int', help: 'seed of the masks', default: 0, min: 0 },
  out: { kind: 'string', help: 'the PNG to write', default: 'reconstruction.png' },
  help: { kind: 'bool', help: 'show this help', default: false },
};

/** A SparK from a sparkts run folder, or from an official `*_withdecoder_*.pth` (its module dict and config). */
function openCheckpoint(path: string | undefined, model: string | undefined, maskRatio: number | undefined): { spark: SparK; inputSize: number } {
  if (!path) throw new UsageError('--ckpt is required');
  const stat = statSync(path, { throwIfNoEntry: false });
  if (stat?.isFile() && /\.pth?$/.test(path)) {
    if (!model) throw new UsageError('--model is required with a .pth checkpoint');
    const choice = modelChoice(model);
    const { tensors, extras } = stateDictFrom(loadTorch(path), path);
    const config = (extras.config ?? {}) as Record<string, unknown>;
    const inputSize = typeof config['sparse_encoder.input_size'] === 'number' ? config['sparse_encoder.input_size'] : choice.inputSize;
    const spark = new SparK(choice.build({}), {
      inputSize, maskRatio: maskRatio ?? (typeof config.mask_ratio === 'number' ? config.mask_ratio : 0.6),
      decoderWidth: typeof config['dense_decoder.width'] === 'number' ? config['dense_decoder.width'] : choice.decoderWidth, densifyNorm: choice.densifyNorm,
    });
    spark.loadStateDict(tensors, { strict: true });
    return { spark, inputSize };
  }
  if (!stat?.isDirectory()) throw new UsageError(`--ckpt: '${path}' is not a run folder or a .pth file`);
  const run = loadConfig(path);
  if (run.command !== 'pretrain') throw new UsageError(`--ckpt: ${path} holds a ${run.command} run, not a pretraining run`);
  const choice = modelChoice(run.flags.model as string);
  const inputSize = (run.flags['input-size'] as number | undefined) ?? choice.inputSize;
  const spark = new SparK(choice.build({}), {
    inputSize, maskRatio: maskRatio ?? (run.flags['mask-ratio'] as number),
    decoderWidth: (run.flags['decoder-width'] as number | undefined) ?? choice.decoderWidth, densifyNorm: choice.densifyNorm,
  });
  spark.loadStateDict(loadSafetensors(join(path, 'spark.safetensors')), { strict: true });
  return { spark, inputSize };
}

export async function reconstruct(argv: readonly string[]): Promise<number> {
  const flags = parseFlags(argv, RECONSTRUCT_FLAGS);
  const { spark, inputSize } = openCheckpoint(flags.ckpt as string | undefined, flags.model as string | undefined, flags['mask-ratio'] as number | undefined);
  spark.eval();
  const spec = flags.images as string;
  const dataset = openDataset(spec, 'test');
  if (spec !== 'embedded' && readdirSync(spec).length === 0) throw new UsageError(`--images: '${spec}' is empty`);
  const count = Math.min(flags.count as number, dataset.length);
  const loader = new DataLoader(dataset, { batchSize: count, shuffle: false, transform: evalTransform(inputSize, 1), prefetch: 0 });
  const images = loader.getBatch(0).images;
  const out = noGrad(() => spark.forward(images, { active: spark.randomMask(count, new Generator(flags.seed as number)) }));
  writeFileAtomic(flags.out as string, encodePng(reconstructionGrid([out.inp, out.masked, out.recOrInp], IMAGENET_MEAN, IMAGENET_STD, count)));
  process.stderr.write(`wrote ${flags.out}: ${count} rows, masked loss ${out.loss.item().toFixed(4)}\n`);
  return 0;
}
