/**
 * A training run's folder: checkpoints written atomically (temp file + rename) at every epoch and on Ctrl-C,
 * and the metrics log. A checkpoint is a set of files that are read back together:
 *   spark.safetensors / model.safetensors   the model (official keys)
 *   encoder.safetensors                     the bare encoder (timm / official keys), pretraining only
 *   optimizer.safetensors                   the optimizer state (tensors + its JSON in the metadata)
 *   config.json                             the run's flags, where it stands (epoch, batch, step), generator states
 * config.json is written last, so a crash mid-save leaves the previous checkpoint's config pointing at files that
 * are all complete (each is replaced atomically on its own).
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic, saveSafetensors, loadSafetensors, loadSafetensorsMetadata } from '../io/index.ts';
import type { Tensor } from '../tensor/tensor.ts';
import type { Optimizer } from '../optim/optimizer.ts';
import { packStateDict, unpackStateDict } from '../optim/optimizer.ts';
import { explicitFlags, UsageError, type FlagValues } from './args.ts';

export interface RunPosition {
  /** the epoch and the batch within it where training continues */
  epoch: number;
  batch: number;
  /** optimizer steps taken so far */
  step: number;
}

export interface RunConfig {
  command: 'pretrain' | 'finetune';
  flags: FlagValues;
  position: RunPosition;
  generators: Record<string, number[]>;
  bestTop1?: number;
}

export function ensureDir(dir: string): void {
  mkdirSync(dir, { recursive: true });
}

export function saveOptimizer(path: string, opt: Optimizer<object>): void {
  const packed = packStateDict(opt.stateDict());
  saveSafetensors(path, packed.tensors, { optimizer: packed.metadata });
}

export function loadOptimizer(path: string, opt: Optimizer<object>): void {
  const meta = loadSafetensorsMetadata(path);
  opt.loadStateDict(unpackStateDict(loadSafetensors(path), meta.optimizer ?? ''));
}

export function saveConfig(dir: string, config: RunConfig): void {
  writeFileAtomic(join(dir, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
}

export function loadConfig(dir: string): RunConfig {
  const path = join(dir, 'config.json');
  if (!existsSync(path)) throw new Error(`cannot resume: ${path} does not exist`);
  return JSON.parse(readFileSync(path, 'utf8')) as RunConfig;
}

export function saveTensors(dir: string, name: string, tensors: Record<string, Tensor>): void {
  saveSafetensors(join(dir, name), tensors);
}

/** metrics.jsonl: one JSON object per step; on resume, lines past the checkpoint's step are dropped. */
export class MetricsLog {
  private readonly path: string;
  constructor(dir: string, keepUpToStep: number) {
    this.path = join(dir, 'metrics.jsonl');
    const kept = existsSync(this.path)
      ? readFileSync(this.path, 'utf8').split('\n').filter((l) => l.trim() && (JSON.parse(l) as { step: number }).step <= keepUpToStep)
      : [];
    writeFileAtomic(this.path, kept.map((l) => `${l}\n`).join(''));
  }

  append(record: Record<string, number | string>): void {
    writeFileSync(this.path, `${JSON.stringify(record)}\n`, { flag: 'a' });
  }
}

/**
 * With --resume: the saved run's flags, overridden by those given now (e.g. --steps or --epochs to extend it),
 * refusing changes to the flags in `fixed` (they set the model's shape). Without: the flags as parsed.
 */
export function resolveRun(command: RunConfig['command'], argv: readonly string[], flags: FlagValues, fixed: readonly string[]): { flags: FlagValues; resumed: RunConfig | null } {
  if (!flags.resume) return { flags, resumed: null };
  const out = flags.out as string;
  const resumed = loadConfig(out);
  if (resumed.command !== command) throw new UsageError(`--resume: ${out} holds a ${resumed.command} run`);
  const given = explicitFlags(argv);
  for (const f of fixed) {
    if (given.has(f) && flags[f] !== resumed.flags[f]) throw new UsageError(`--${f} ${flags[f]} differs from the run being resumed (${resumed.flags[f]})`);
  }
  return { flags: { ...resumed.flags, ...Object.fromEntries([...given].map((g) => [g, flags[g]])), resume: true }, resumed };
}

/** Run `body` with SIGINT/SIGTERM turned into a flag it polls between steps (so a checkpoint can be written). */
export async function withStopSignal<T>(body: (stopRequested: () => boolean) => Promise<T>): Promise<T> {
  let stop = false;
  const onSignal = () => { stop = true; };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    return await body(() => stop);
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }
}
