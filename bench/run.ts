/**
 * `npm run bench`: measures sparkts's kernels and, in the same run on the same machine, PyTorch CPU
 * (bench/ref/torch_ops.py through Debian's python3-torch), then prints one table with the ratios.
 * Where torch is missing the PyTorch column says so; nothing here is a test.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cpus } from 'node:os';
import { benchKernels, type Row } from './kernels.ts';
import { benchWasm } from './wasm.ts';
import { wasmDescription } from '../kernels/wasm/runtime.ts';
import { benchSpark, type SparkRow } from './spark.ts';
import { benchPointwise, type PointwiseRow } from './pointwise.ts';

type RefRow = { gflops: number; ms: number };

function pythonWithTorch(): string | null {
  for (const py of [process.env.SPARKTS_PYTHON, '/usr/bin/python3', 'python3'].filter(Boolean) as string[]) {
    const probe = spawnSync(py, ['-c', 'import torch'], { stdio: 'ignore' });
    if (probe.status === 0) return py;
  }
  return null;
}

/**
 * PyTorch at its best here: OpenBLAS (libopenblas0-pthread) instead of the generic BLAS Debian's torch links by
 * default, OPENBLAS_CORETYPE/L2_SIZE unset (they pin an older kernel), and malloc thresholds raised so large
 * tensors do not page-fault on every allocation.
 */
function torchEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, MALLOC_MMAP_THRESHOLD_: '1000000000', MALLOC_TRIM_THRESHOLD_: '1000000000' };
  delete env.OPENBLAS_CORETYPE;
  delete env.OPENBLAS_L2_SIZE;
  const openblas = '/usr/lib/x86_64-linux-gnu/openblas-pthread';
  if (existsSync(openblas)) env.LD_LIBRARY_PATH = [openblas, env.LD_LIBRARY_PATH].filter(Boolean).join(':');
  return env;
}

function torchReference(script: string, threads: number): { rows: Record<string, RefRow>; note: string } {
  const py = pythonWithTorch();
  if (!py) return { rows: {}, note: 'PyTorch not found (apt-get install -y python3-torch): reference skipped' };
  const res = spawnSync(py, [script, '--threads', String(threads)], { encoding: 'utf8', maxBuffer: 1 << 20, env: torchEnv() });
  if (res.status !== 0) return { rows: {}, note: `bench/ref/torch_ops.py failed: ${res.stderr.trim().split('\n').pop()}` };
  const lines = res.stdout.trim().split('\n');
  const parsed = JSON.parse(lines[lines.length - 1]) as Record<string, RefRow> & { _info?: string };
  const note = typeof parsed._info === 'string' ? parsed._info : '';
  delete parsed._info;
  return { rows: parsed, note };
}

function pad(s: string, n: number): string {
  return s.length >= n ? s : s + ' '.repeat(n - s.length);
}

function printTable(header: string[], body: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => pad(c, widths[i])).join(' | ')} |`;
  console.log(line(header));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  body.forEach((b) => console.log(line(b)));
}

function kernelTable(plain: Row[], wasm: Row[]): void {
  const rows = [...plain.map((r) => ({ ...r, shape: `${r.shape} [TypeScript, 1 thread]` })), ...wasm.map((r) => ({ ...r, shape: `${r.shape} [${wasmDescription()}]` }))];
  const ref1 = torchReference('bench/ref/torch_ops.py', 1);
  const ref2 = torchReference('bench/ref/torch_ops.py', 2);
  for (const note of new Set([ref1.note, ref2.note])) if (note) console.log(note);
  console.log('\nKernels. ratio = sparkts GFLOP/s ÷ PyTorch GFLOP/s (higher is better for sparkts)');
  const cell = (r: Row, t: RefRow | undefined) => (t ? [t.gflops.toFixed(2), `${(r.gflops / t.gflops).toFixed(3)}x`] : ['–', '–']);
  printTable(
    ['op', 'shape / kernels', 'sparkts GFLOP/s', 'PyTorch 1 thread', 'ratio', 'PyTorch 2 threads', 'ratio'],
    rows.map((r) => [r.name, r.shape, `${r.gflops.toFixed(2)} (${r.ms.toFixed(1)} ms)`, ...cell(r, ref1.rows[r.name]), ...cell(r, ref2.rows[r.name])]),
  );
}

function sparkTable(rows: SparkRow[]): void {
  const ref = torchReference('bench/ref/torch_spark.py', 1);
  if (ref.note) console.log(ref.note);
  console.log('\nSparK, ResNet-18-width encoder, 96x96, batch 8, decoder 768, forward + backward.');
  console.log('ratio = PyTorch ms ÷ sparkts ms (higher is better for sparkts); active/masked = active ms ÷ masked ms');
  const byName = (name: string, impl: string) => rows.find((r) => r.name === name && r.impl === impl)!;
  const names = [...new Set(rows.map((r) => r.name))];
  printTable(
    ['what', 'sparkts active ms', 'sparkts masked ms', 'active / masked', 'PyTorch (official-style) ms', 'ratio (active)'],
    names.map((name) => {
      const a = byName(name, 'active').ms, m = byName(name, 'masked').ms, t = ref.rows[name]?.ms;
      return [name, a.toFixed(0), m.toFixed(0), (a / m).toFixed(2), t ? t.toFixed(0) : '–', t ? `${(t / a).toFixed(3)}x` : '–'];
    }),
  );
}

function pointwiseTable(rows: PointwiseRow[]): void {
  if (rows.length === 0) return console.log(`\nPointwise passes: no wasm kernels (${wasmDescription()})`);
  console.log(`\nPointwise passes, float32. speed-up = reference ms ÷ wasm ms (${wasmDescription()})`);
  printTable(
    ['pass', 'shape', 'reference ms', 'wasm ms, split', 'speed-up', 'wasm ms, 1 thread', 'speed-up'],
    rows.map((r) => [r.name, r.shape, r.refMs.toFixed(2), r.wasmMs.toFixed(2), `${(r.refMs / r.wasmMs).toFixed(2)}x`,
      r.wasm1Ms.toFixed(2), `${(r.refMs / r.wasm1Ms).toFixed(2)}x`]),
  );
}

async function main(): Promise<void> {
  console.log(`sparkts bench — ${new Date().toISOString().slice(0, 10)}, ${cpus().length} cores (${cpus()[0]?.model ?? 'unknown cpu'}), node ${process.version}`);
  const only = process.env.SPARKTS_BENCH; // 'kernels', 'pointwise' or 'spark' to run one part
  if (!only || only === 'kernels') kernelTable(await benchKernels(), await benchWasm());
  if (!only || only === 'pointwise') pointwiseTable(benchPointwise());
  if (!only || only === 'spark') sparkTable(benchSpark());
}

await main();
