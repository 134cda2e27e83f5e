// `sparkts finetune` from a pretraining run's encoder and `sparkts reconstruct` from its SparK weights, through the
// real command line: metrics with a top-1, the grid's size, and clear usage errors.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeImage } from '../../src/data/decode.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'sparkts-ft-'));

function sparkts(args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), ...args], { encoding: 'utf8', cwd: ROOT });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const pre = join(dir, 'pre');

test('finetune loads the pretrained encoder (only the head is new) and reports top-1 on the held-out set', () => {
  assert.is(sparkts(['pretrain', '--model', 'resnet-tiny', '--batch-size', '8', '--steps', '2', '--out', pre]).status, 0);
  const ft = join(dir, 'ft');
  const r = sparkts(['finetune', '--init', pre, '--model', 'resnet-tiny', '--labels-per-class', '2', '--batch-size', '10', '--epochs', '1', '--out', ft]);
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stderr, /loaded .*: new fc\.weight, fc\.bias/);
  const lines = readFileSync(join(ft, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { top1?: number });
  const top1 = lines.find((l) => l.top1 !== undefined)!.top1!;
  assert.ok(top1 >= 0 && top1 <= 1);
  const wrong = sparkts(['finetune', '--init', pre, '--model', 'resnet18-small', '--steps', '1', '--out', join(dir, 'bad')]);
  assert.is(wrong.status, 2);
  assert.match(wrong.stderr, /--init .* does not match --model resnet18-small/);
});

test('reconstruct draws rows of original | masked | reconstruction', () => {
  const png = join(dir, 'grid.png');
  const r = sparkts(['reconstruct', '--ckpt', pre, '--count', '4', '--out', png]);
  assert.is(r.status, 0, r.stderr);
  const img = decodeImage(readFileSync(png));
  assert.equal([img.width, img.height], [3 * 32 + 4 * 2, 4 * 32 + 5 * 2]);
  assert.is(sparkts(['reconstruct']).status, 2);
  assert.match(sparkts(['reconstruct', '--ckpt', join(dir, 'nope')]).stderr, /is not a run folder or a \.pth file/);
});

test.run();
