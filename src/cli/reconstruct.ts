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
import { loadSafetensors, writeFileAtomic } from '../io/index.ts';
import { parseFlags, UsageError, type FlagSpecs } from './args.ts';
import { modelChoice, openDataset } from './choices.ts';
import { loadConfig } from './checkpoint.ts';
import { reconstructionGrid } from './pictures.ts';

export const RECONSTRUCT_SUMMARY = 'original | masked | reconstruction grid from a pretraining run.';

export const RECONSTRUCT_FLAGS: FlagSpecs = {
  ckpt: { kind: 'string', help: 'a pretraining run folder (config.json + spark.safetensors)' },
  images: { kind: 'string', help: "a folder of images, or 'embedded' (its test images)", default: 'embedded' },
  'mask-ratio': { kind: 'float', help: "fraction of patches masked (the run's if absent)", min: 0, max: 0.99 },
  count: { kind: 'int', help: 'rows (images)', default: 8, min: 1, max: 64 },
  seed: { kind: 'int', help: 'seed of the masks', default: 0, min: 0 },
  out: { kind: 'string', help: 'the PNG to write', default: 'reconstruction.png' },
  help: { kind: 'bool', help: 'show this help', default: false },
};

export async function reconstruct(argv: readonly string[]): Promise<number> {
  const flags = parseFlags(argv, RECONSTRUCT_FLAGS);
  const dir = flags.ckpt as string | undefined;
  if (!dir) throw new UsageError('--ckpt is required');
  if (!statSync(dir, { throwIfNoEntry: false })?.isDirectory()) throw new UsageError(`--ckpt: '${dir}' is not a run folder`);
  const run = loadConfig(dir);
  if (run.command !== 'pretrain') throw new UsageError(`--ckpt: ${dir} holds a ${run.command} run, not a pretraining run`);
  const choice = modelChoice(run.flags.model as string);
  const inputSize = (run.flags['input-size'] as number | undefined) ?? choice.inputSize;
  const spark = new SparK(choice.build({}), {
    inputSize, maskRatio: (flags['mask-ratio'] as number | undefined) ?? (run.flags['mask-ratio'] as number),
    decoderWidth: (run.flags['decoder-width'] as number | undefined) ?? choice.decoderWidth, densifyNorm: choice.densifyNorm,
  });
  spark.loadStateDict(loadSafetensors(join(dir, 'spark.safetensors')), { strict: true });
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
