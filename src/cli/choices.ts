/**
 * What the training commands can be asked for by name: encoders (with SparK's densify norm, the default input
 * size and decoder width for each) and data sources ('embedded', 'fashion-mnist', or a folder).
 */
import { resnet, resnet18, resnet50, type ResNet } from '../../models/resnet.ts';
import { convnextAtto, convnextTiny, convnextSmall, type ConvNeXt } from '../../models/convnext.ts';
import { FashionMnist, ImageFolder, type Dataset } from '../data/datasets.ts';
import { fileURLToPath } from 'node:url';
import { existsSync } from 'node:fs';
import { UsageError } from './args.ts';

export interface ModelChoice {
  build: (options: { numClasses?: number; dropPath?: number }) => ResNet | ConvNeXt;
  densifyNorm: 'bn' | 'ln';
  inputSize: number;
  decoderWidth: number;
  family: 'resnet' | 'convnext';
}

export const MODELS: Record<string, ModelChoice> = {
  // a very small ResNet for quick runs and tests (32 px, ratio 8)
  'resnet-tiny': { build: (o) => resnet({ block: 'basic', layers: [1, 1, 1, 1], widths: [16, 32, 64, 128], smallInput: true, ...o }), densifyNorm: 'bn', inputSize: 32, decoderWidth: 128, family: 'resnet' },
  'resnet18-small': { build: (o) => resnet18({ smallInput: true, ...o }), densifyNorm: 'bn', inputSize: 32, decoderWidth: 256, family: 'resnet' },
  'convnext-atto-small': { build: (o) => convnextAtto({ smallInput: true, ...o }), densifyNorm: 'ln', inputSize: 32, decoderWidth: 256, family: 'convnext' },
  resnet18: { build: (o) => resnet18(o), densifyNorm: 'bn', inputSize: 224, decoderWidth: 768, family: 'resnet' },
  resnet50: { build: (o) => resnet50({ dropPath: 0.05, ...o }), densifyNorm: 'bn', inputSize: 224, decoderWidth: 768, family: 'resnet' },
  'convnext-tiny': { build: (o) => convnextTiny(o), densifyNorm: 'ln', inputSize: 224, decoderWidth: 768, family: 'convnext' },
  'convnext-small': { build: (o) => convnextSmall({ dropPath: 0.2, ...o }), densifyNorm: 'ln', inputSize: 224, decoderWidth: 768, family: 'convnext' },
};

export const MODEL_NAMES = Object.keys(MODELS);

export function modelChoice(name: string): ModelChoice {
  const m = MODELS[name];
  if (!m) throw new UsageError(`--model must be one of ${MODEL_NAMES.join(', ')}, got '${name}'`);
  return m;
}

/** The Fashion-MNIST subset committed with sparkts (2,000 train / 500 test images). */
export function embeddedDir(): string {
  for (const rel of ['../data/embedded/', '../src/data/embedded/']) {
    const dir = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(dir)) return dir;
  }
  throw new Error('the embedded image set is missing from this installation (src/data/embedded)');
}

/** How many unreadable files a folder dataset skipped (reported with their paths as they were found). */
export function skippedCount(ds: Dataset): number {
  return ds instanceof ImageFolder ? ds.skippedCount : 0;
}

/** 'embedded' | 'fashion-mnist' | a folder of images; `split` picks the held-out part where there is one. */
export function openDataset(spec: string, split: 'train' | 'test'): Dataset {
  if (spec === 'embedded') return new FashionMnist(embeddedDir(), split);
  if (spec === 'fashion-mnist') return new FashionMnist(undefined, split);
  if (!existsSync(spec)) throw new UsageError(`--data: no such folder '${spec}'`);
  return new ImageFolder(spec);
}
