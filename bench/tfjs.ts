/**
 * Runs the TensorFlow.js reference (bench/ref/tfjs_ops.ts) in a child process per backend — 'cpu' (plain
 * JavaScript) and 'wasm' (asked for as many threads as sparkts uses) — and returns its rows by case name, with a
 * note on what each ran with. The child keeps TF.js's memory and its wasm instance apart from sparkts's. Where
 * @tensorflow/tfjs is not installed, or a child fails, the note says so and there are no rows.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

export type TfjsRow =
  | { gflops: number; ms: number; runs: number }
  | { cannotTrain: string; fwdGflops: number; fwdMs: number; runs: number };

export function tfjsReference(backend: 'cpu' | 'wasm', threads = 1): { rows: Record<string, TfjsRow>; note: string } {
  if (!existsSync('node_modules/@tensorflow/tfjs-core')) return { rows: {}, note: 'TF.js not installed (npm install): reference skipped' };
  const args = ['--import', 'tsx', 'bench/ref/tfjs_ops.ts', '--backend', backend, '--threads', String(threads)];
  // the plain-JS backend's conv gradients take minutes at these sizes
  const res = spawnSync(process.execPath, args, { encoding: 'utf8', maxBuffer: 1 << 22, timeout: 30 * 60_000 });
  const last = res.stdout?.trim().split('\n').pop() ?? '';
  if (res.status !== 0 || !last.startsWith('{')) {
    const why = res.error?.message ?? res.stderr?.trim().split('\n').pop() ?? `exit ${res.status}`;
    return { rows: {}, note: `bench/ref/tfjs_ops.ts --backend ${backend} failed: ${why}` };
  }
  const parsed = JSON.parse(last) as Record<string, TfjsRow> & { _info?: string };
  const note = typeof parsed._info === 'string' ? parsed._info : '';
  delete parsed._info;
  return { rows: parsed, note };
}
