/**
 * `npm run bench`: measures sparkts's kernels and, in the same run on the same machine, PyTorch CPU
 * (bench/ref/torch_ops.py through Debian's python3-torch), then prints one table with the ratios.
 * Where torch is missing the PyTorch column says so; nothing here is a test. TensorFlow.js (bench/ref/tfjs_ops.ts,
 * in child processes) adds its columns to the kernel table; both sides run with the same glibc malloc settings.
 * bench/resnet.ts and bench/ref/torch_resnet_step.py time a ResNet-18 training step; bench/sparse_encoder.ts the
 * sparse encoder against its visible fraction. Each part of a run of several runs in a child process of its own
 * (PARTS).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cpus } from 'node:os';
import { benchKernels, type Row } from './kernels.ts';
import { benchWasm } from './wasm.ts';
import { getRuntime, wasmDescription } from '../kernels/wasm/runtime.ts';
import { benchSpark, SPARK_BATCH, type SparkRow } from './spark.ts';
import { benchPointwise, type PointwiseRow } from './pointwise.ts';
import { benchGpu } from './gpu.ts';
import { tfjsReference, type TfjsRow } from './tfjs.ts';
import { benchResnetStep, RESNET_STEP } from './resnet.ts';
import { benchSparseEncoder, ENCODER_SWEEP, type EncoderRow } from './sparse_encoder.ts';
import { MALLOC_TUNING, relaunchTuned, wantsTunedRelaunch } from '../src/cli/allocator.ts';

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
  const env: NodeJS.ProcessEnv = { ...process.env, ...MALLOC_TUNING };
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
  if (res.status !== 0) return { rows: {}, note: `${script} failed: ${res.stderr.trim().split('\n').pop()}` };
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

/** The references' columns: PyTorch on 1 and 2 threads (`torch`), TF.js's cpu and wasm backends (`tfjs`). */
function kernelTable(plain: Row[], wasm: Row[], refs = { torch: true, tfjs: true }): void {
  const rows = [...plain.map((r) => ({ ...r, shape: `${r.shape} [TypeScript, 1 thread]` })), ...wasm.map((r) => ({ ...r, shape: `${r.shape} [${wasmDescription()}]` }))];
  const noTorch = { rows: {} as Record<string, RefRow>, note: '' }, noTfjs = { rows: {} as Record<string, TfjsRow>, note: '' };
  const ref1 = refs.torch ? torchReference('bench/ref/torch_ops.py', 1) : noTorch;
  const ref2 = refs.torch ? torchReference('bench/ref/torch_ops.py', 2) : noTorch;
  for (const note of new Set([ref1.note, ref2.note])) if (note) console.log(note);
  const tfCpu = refs.tfjs ? tfjsReference('cpu') : noTfjs;
  const tfWasm = refs.tfjs ? tfjsReference('wasm', getRuntime()?.threads ?? 1) : noTfjs;
  for (const note of [tfCpu.note, tfWasm.note]) if (note) console.log(note);
  console.log('\nKernels. ratio = sparkts GFLOP/s ÷ reference GFLOP/s (higher is better for sparkts)');
  const cell = (r: Row, t: RefRow | undefined) => (t ? [t.gflops.toFixed(2), `${(r.gflops / t.gflops).toFixed(3)}x`] : ['–', '–']);
  const tfCell = (r: Row, t: TfjsRow | undefined) => {
    if (!t) return ['–', '–'];
    const once = t.runs === 1 ? ', 1 run' : '';
    if ('cannotTrain' in t) return [`cannot train (forward alone ${t.fwdGflops.toFixed(2)}${once})`, '–'];
    return [`${t.gflops.toFixed(2)}${once ? ` (${(t.ms / 1000).toFixed(1)} s${once})` : ''}`, `${(r.gflops / t.gflops).toFixed(3)}x`];
  };
  const header = ['op', 'shape / kernels', 'sparkts GFLOP/s'];
  if (refs.torch) header.push('PyTorch 1 thread', 'ratio', 'PyTorch 2 threads', 'ratio');
  if (refs.tfjs) header.push('TF.js cpu', 'ratio', 'TF.js wasm', 'ratio');
  printTable(
    header,
    rows.map((r) => [r.name, r.shape, `${r.gflops.toFixed(2)} (${r.ms.toFixed(1)} ms)`,
      ...(refs.torch ? [...cell(r, ref1.rows[r.name]), ...cell(r, ref2.rows[r.name])] : []),
      ...(refs.tfjs ? [...tfCell(r, tfCpu.rows[r.name]), ...tfCell(r, tfWasm.rows[r.name])] : [])]),
  );
  for (const [backend, ref] of [['cpu', tfCpu], ['wasm', tfWasm]] as const) {
    for (const [name, t] of Object.entries(ref.rows)) if ('cannotTrain' in t) console.log(`TF.js ${backend} cannot train ${name}: ${t.cannotTrain}`);
  }
}

function resnetTable(): void {
  const { batch, size, classes } = RESNET_STEP;
  const r = benchResnetStep();
  const ref1 = torchReference('bench/ref/torch_resnet_step.py', 1);
  const ref2 = torchReference('bench/ref/torch_resnet_step.py', 2);
  for (const note of new Set([ref1.note, ref2.note])) if (note) console.log(note);
  console.log(`\nResNet-18 training step, ${batch}x3x${size}x${size}, ${classes} classes: forward, cross-entropy, backward, SGD momentum 0.9.`);
  console.log(`sparkts on ${wasmDescription()}. ratio = sparkts ms ÷ PyTorch ms (lower is better for sparkts)`);
  const cell = (t: RefRow | undefined) => (t ? [t.ms.toFixed(1), `${(r.ms / t.ms).toFixed(2)}x`] : ['–', '–']);
  printTable(
    ['what', 'sparkts ms', 'PyTorch 1 thread ms', 'ratio', 'PyTorch 2 threads ms', 'ratio'],
    [[r.name, r.ms.toFixed(1), ...cell(ref1.rows[r.name]), ...cell(ref2.rows[r.name])]],
  );
}

function encoderTable(rows: EncoderRow[]): void {
  const { size, batch } = ENCODER_SWEEP;
  console.log(`\nSparse encoder (ResNet-18 width), ${size}x${size}, batch ${batch}, forward + backward, against the visible fraction.`);
  console.log(`sparkts on ${wasmDescription()}. active / masked = active ms ÷ masked ms`);
  const pick = (ratio: number, impl: string) => rows.find((r) => r.maskRatio === ratio && r.impl === impl)!;
  const ratios = [...new Set(rows.map((r) => r.maskRatio))];
  printTable(
    ['mask ratio', 'visible fraction', 'active ms', 'masked ms', 'active / masked'],
    ratios.map((ratio) => {
      const a = pick(ratio, 'active'), m = pick(ratio, 'masked');
      return [String(ratio), a.visible.toFixed(2), a.ms.toFixed(0), m.ms.toFixed(0), (a.ms / m.ms).toFixed(2)];
    }),
  );
}

function sparkTable(rows: SparkRow[]): void {
  const ref1 = torchReference('bench/ref/torch_spark.py', 1);
  const ref2 = torchReference('bench/ref/torch_spark.py', 2);
  for (const note of new Set([ref1.note, ref2.note])) if (note) console.log(note);
  console.log(`\nSparK, ResNet-18-width encoder, 96x96, batch ${SPARK_BATCH}, decoder 768: forward, backward and a LAMB update (encoder rows: forward + backward).`);
  console.log(`sparkts on ${wasmDescription()}. ratio = sparkts ms ÷ PyTorch ms (lower is better for sparkts); active/masked = active ms ÷ masked ms`);
  const byName = (name: string, impl: string) => rows.find((r) => r.name === name && r.impl === impl)!;
  const names = [...new Set(rows.map((r) => r.name))];
  const cell = (a: number, t: RefRow | undefined) => (t ? [t.ms.toFixed(0), `${(a / t.ms).toFixed(2)}x`] : ['–', '–']);
  printTable(
    ['what', 'sparkts active ms', 'sparkts masked ms', 'active / masked', 'PyTorch 1 thread ms', 'ratio (active)', 'PyTorch 2 threads ms', 'ratio (active)'],
    names.map((name) => {
      const a = byName(name, 'active').ms, m = byName(name, 'masked').ms;
      return [name, a.toFixed(0), m.toFixed(0), (a / m).toFixed(2), ...cell(a, ref1.rows[name]), ...cell(a, ref2.rows[name])];
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

async function gpuTable(): Promise<void> {
  const { rows, modes } = await benchGpu();
  console.log('\ngpu backend (gpu.js) against the cpu backend, same process. speed-up = cpu ms ÷ gpu ms (higher is better for the gpu)');
  for (const [mode, what] of Object.entries(modes)) console.log(`  ${mode}: ${what}`);
  const present = Object.keys(modes).filter((m) => !modes[m].startsWith('absent'));
  const cell = (v: number | string | undefined, cpuMs: number) => (typeof v === 'number' ? [v.toFixed(1), `${(cpuMs / v).toFixed(2)}x`] : [String(v ?? '–'), '–']);
  printTable(
    ['op', 'shape', 'cpu ms', ...present.flatMap((m) => [`${m} ms`, 'speed-up'])],
    rows.map((r) => [r.name, r.shape, r.cpuMs.toFixed(1), ...present.flatMap((m) => cell(r.gpu[m], r.cpuMs))]),
  );
  if (!present.includes('headlessgl')) console.log('  (headless GL needs an X display: xvfb-run -a npm run bench)');
}

/**
 * The parts of a run, each measured in a process of its own, as PyTorch's reference scripts are: in one process
 * after the kernel tables, the ResNet step measured 337 ms against 241–265 ms alone (the heap and the wasm
 * memory those tables grew stay with the process).
 */
const PARTS = ['kernels,tfjs', 'pointwise', 'resnet', 'spark', 'encoder', 'gpu'];

async function main(): Promise<void> {
  // 'kernels' (with PyTorch), 'tfjs' (the kernel table with TF.js), 'pointwise', 'resnet', 'spark' (with the
  // encoder sweep), 'encoder' (the sweep alone) or 'gpu' to run one part; a comma-separated list for several
  const only = process.env.SPARKTS_BENCH;
  const wants = (part: string) => !only || only.split(',').includes(part);
  if (!process.env.SPARKTS_BENCH_PART) {
    console.log(`sparkts bench — ${new Date().toISOString().slice(0, 10)}, ${cpus().length} cores (${cpus()[0]?.model ?? 'unknown cpu'}), node ${process.version}`);
    const parts = PARTS.filter((part) => part.split(',').some(wants) && !(part === 'encoder' && wants('spark')));
    if (parts.length > 1) {
      for (const part of parts) {
        const chosen = part.split(',').filter(wants).join(',');
        const res = spawnSync(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
          stdio: 'inherit', env: { ...process.env, SPARKTS_BENCH: chosen, SPARKTS_BENCH_PART: '1' },
        });
        if (res.status !== 0) console.log(`bench part '${chosen}' failed (exit ${res.status ?? res.signal})`);
      }
      return;
    }
  }
  if (wants('kernels') || wants('tfjs')) kernelTable(await benchKernels(), await benchWasm(), { torch: wants('kernels'), tfjs: wants('tfjs') });
  if (wants('pointwise')) pointwiseTable(benchPointwise());
  if (wants('resnet')) resnetTable();
  if (wants('spark')) sparkTable(benchSpark());
  if (wants('spark') || wants('encoder')) encoderTable(benchSparseEncoder());
  if (wants('gpu')) await gpuTable();
}

// sparkts runs with the same malloc settings as PyTorch's reference runs (src/cli/allocator.ts, torchEnv above),
// and with the training commands' node flags
if (wantsTunedRelaunch()) process.exitCode = (await relaunchTuned()) ?? (await main(), 0);
else await main();
