/**
 * `npm run experiment`: the small-scale version of the paper's table on Fashion-MNIST (Debian's
 * dataset-fashion-mnist). SparK-pretrain a small ResNet on the 60,000 training images without labels, then
 * fine-tune with 1% and 10% of the labels, against the same fine-tuning from random initialisation; 3 seeds each;
 * top-1 on the 10,000 test images after the last epoch (no selection on the test set), as mean ± std.
 * Every run goes through the real `sparkts` command line. Results land in experiments/fashion-mnist/:
 * results.json, table.md, loss.png (pretraining loss per step) and reconstruction.png.
 * Budget (this 2-core machine): about an hour. Interrupted (Ctrl-C), it resumes where it stopped when run again.
 * EXPERIMENT_QUICK=1 runs a tiny version to check the plumbing.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { linePlot } from '../src/cli/pictures.ts';
import { encodePng } from '../src/data/decode.ts';

const quick = process.env.EXPERIMENT_QUICK === '1';
const OUT = 'experiments/fashion-mnist';
const RUNS = join(OUT, 'runs');
const MODEL = 'resnet-tiny';
const SEEDS = [0, 1, 2];
const PRETRAIN = ['--model', MODEL, '--data', 'fashion-mnist', '--batch-size', '64', '--epochs', '1', '--base-lr', '0.2', '--warmup-epochs', '0.1', ...(quick ? ['--steps', '3'] : [])];
const FRACTIONS: { name: string; perClass: number; epochs: number }[] = [
  { name: '1%', perClass: 60, epochs: 15 },
  { name: '10%', perClass: 600, epochs: 3 },
];

function sparkts(args: string[]): void {
  const started = Date.now();
  console.log(`$ sparkts ${args.join(' ')}`);
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.status !== 0) throw new Error(`sparkts ${args[0]} failed with ${r.status}`);
  console.log(`  (${((Date.now() - started) / 60000).toFixed(1)} min)`);
}

function lines(run: string): Record<string, number>[] {
  return readFileSync(join(run, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);
}

function meanStd(xs: number[]): string {
  const m = xs.reduce((a, b) => a + b, 0) / xs.length;
  const sd = Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / Math.max(1, xs.length - 1));
  return `${(100 * m).toFixed(2)} ± ${(100 * sd).toFixed(2)}`;
}

function main(): void {
  mkdirSync(RUNS, { recursive: true });
  const pre = join(RUNS, 'pretrain');
  // an interrupted experiment picks up where it stopped: pretraining resumes, finished fine-tunes are kept
  sparkts(['pretrain', ...(existsSync(join(pre, 'config.json')) ? ['--resume'] : PRETRAIN), '--out', pre]);
  const losses = lines(pre).map((l) => l.loss);
  writeFileSync(join(OUT, 'loss.png'), encodePng(linePlot([losses])));
  copyFileSync(join(pre, 'reconstruction.png'), join(OUT, 'reconstruction.png'));

  const results: Record<string, Record<string, number[]>> = {};
  for (const f of FRACTIONS) {
    results[f.name] = { spark: [], scratch: [] };
    for (const seed of SEEDS) {
      for (const init of ['spark', 'scratch'] as const) {
        const run = join(RUNS, `ft-${f.perClass}-${init}-${seed}`);
        const epochs = quick ? 1 : f.epochs;
        const done = existsSync(join(run, 'metrics.jsonl')) && lines(run).some((l) => l.top1 !== undefined && l.epoch === epochs - 1);
        if (!done) sparkts(['finetune', '--model', MODEL, '--data', 'fashion-mnist', '--labels-per-class', String(f.perClass), '--epochs', String(epochs),
          '--eval-every', String(epochs), '--batch-size', '50', '--base-lr', '4e-3', '--layer-decay', '0.8', '--seed', String(seed), '--out', run, ...(init === 'spark' ? ['--init', pre] : []),
          ...(quick ? ['--steps', '2'] : [])]);
        const top1 = lines(run).filter((l) => l.top1 !== undefined).pop()!.top1;
        results[f.name][init].push(top1);
        writeFileSync(join(OUT, 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
      }
    }
  }
  const table = [
    `| labels | from scratch (top-1 %) | SparK-pretrained (top-1 %) | gain |`,
    `|---|---|---|---|`,
    ...FRACTIONS.map((f) => {
      const r = results[f.name];
      const gain = r.spark.reduce((a, b) => a + b, 0) / r.spark.length - r.scratch.reduce((a, b) => a + b, 0) / r.scratch.length;
      return `| ${f.name} (${f.perClass}/class) | ${meanStd(r.scratch)} | ${meanStd(r.spark)} | ${gain >= 0 ? '+' : ''}${(100 * gain).toFixed(2)} |`;
    }),
  ].join('\n');
  writeFileSync(join(OUT, 'table.md'), `${table}\n`);
  console.log(table);
}

main();
