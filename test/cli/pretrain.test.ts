// End to end through the real command line: `sparkts pretrain` on the embedded Fashion-MNIST subset lowers the
// loss; a run stopped after a checkpoint and resumed gives exactly the losses of an unbroken run; Ctrl-C saves;
// the reconstruction PNG decodes at the expected size; bad flags exit with code 2 and name the flag.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeImage } from '../../src/data/decode.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
// one process with tsx as a loader (tsx's own CLI would sit in between and take the signals)
const CLI = ['--import', 'tsx', join(ROOT, 'src/cli/main.ts')];
const dir = mkdtempSync(join(tmpdir(), 'sparkts-cli-'));
// resnet-tiny at 32 px, batch 8, a high lr so that a few steps show learning
const COMMON = ['--model', 'resnet-tiny', '--batch-size', '8', '--base-lr', '2', '--warmup-epochs', '0.004', '--seed', '3'];

function sparkts(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [...CLI, ...args], { encoding: 'utf8', cwd: ROOT });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function losses(run: string): number[] {
  return readFileSync(join(run, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { loss: number }).loss);
}

test('a few pretraining steps lower the loss, and every checkpoint file is written', () => {
  const run = join(dir, 'unbroken');
  const r = sparkts(['pretrain', ...COMMON, '--steps', '6', '--out', run]);
  assert.is(r.status, 0, r.stderr);
  const l = losses(run);
  assert.is(l.length, 6);
  assert.ok(l[4] + l[5] < l[0] + l[1] - 0.05, `loss did not fall: ${l.map((v) => v.toFixed(4)).join(' ')}`);
  for (const f of ['spark.safetensors', 'encoder.safetensors', 'optimizer.safetensors', 'config.json', 'reconstruction.png']) {
    assert.ok(existsSync(join(run, f)), f);
  }
  const png = decodeImage(readFileSync(join(run, 'reconstruction.png')));
  // 8 rows of 32 px and 3 panels, with 2 px gaps
  assert.equal([png.width, png.height], [3 * 32 + 4 * 2, 8 * 32 + 9 * 2]);
});

test('stopped after a checkpoint and resumed, the run repeats the unbroken losses exactly', () => {
  const run = join(dir, 'resumed');
  assert.is(sparkts(['pretrain', ...COMMON, '--steps', '3', '--out', run]).status, 0);
  const r = sparkts(['pretrain', '--resume', '--steps', '6', '--out', run]);
  assert.is(r.status, 0, r.stderr);
  assert.equal(losses(run), losses(join(dir, 'unbroken')));
});

test('Ctrl-C saves the run before exiting (code 130), and --resume continues from it', async () => {
  const run = join(dir, 'interrupted');
  const child = spawn(process.execPath, [...CLI, 'pretrain', ...COMMON, '--steps', '200', '--out', run], { cwd: ROOT, stdio: 'ignore' });
  const code = await new Promise<number | null>((resolve) => {
    const poll = setInterval(() => {
      if (existsSync(join(run, 'metrics.jsonl')) && readFileSync(join(run, 'metrics.jsonl'), 'utf8').trim()) {
        clearInterval(poll);
        child.kill('SIGINT');
      }
    }, 100);
    child.on('exit', (c) => { clearInterval(poll); resolve(c); });
  });
  assert.is(code, 130);
  const config = JSON.parse(readFileSync(join(run, 'config.json'), 'utf8')) as { position: { step: number } };
  assert.ok(config.position.step >= 1);
  assert.is(losses(run).length, config.position.step);
  const r = sparkts(['pretrain', '--resume', '--steps', String(config.position.step + 1), '--out', run]);
  assert.is(r.status, 0, r.stderr);
  assert.equal(losses(run), losses(join(dir, 'unbroken')).slice(0, config.position.step + 1));
});

test('usage errors name the flag and exit with code 2', () => {
  const unknown = sparkts(['pretrain', '--epoch', '3']);
  assert.is(unknown.status, 2);
  assert.match(unknown.stderr, /unknown flag --epoch/);
  const bad = sparkts(['pretrain', '--mask-ratio', 'lots']);
  assert.is(bad.status, 2);
  assert.match(bad.stderr, /--mask-ratio expects a number, got 'lots'/);
  const help = sparkts(['pretrain', '--help']);
  assert.is(help.status, 0);
  assert.match(help.stdout, /--mask-ratio FLOAT/);
  assert.is(sparkts(['nonsense']).status, 2);
});

test.run();
