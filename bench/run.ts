/**
 * `npm run bench`: measures sparkts's kernels and, in the same run on the same machine, PyTorch CPU
 * (bench/ref/torch_ops.py through Debian's python3-torch), then prints one table with the ratios.
 * Where torch is missing the PyTorch column says so; nothing here is a test.
 */
import { spawnSync } from 'node:child_process';
import { cpus } from 'node:os';
import { benchKernels, type Row } from './kernels.ts';

type RefRow = { gflops: number; ms: number };

function pythonWithTorch(): string | null {
  for (const py of [process.env.SPARKTS_PYTHON, '/usr/bin/python3', 'python3'].filter(Boolean) as string[]) {
    const probe = spawnSync(py, ['-c', 'import torch'], { stdio: 'ignore' });
    if (probe.status === 0) return py;
  }
  return null;
}

function torchReference(): { rows: Record<string, RefRow>; note: string } {
  const py = pythonWithTorch();
  if (!py) return { rows: {}, note: 'PyTorch not found (apt-get install -y python3-torch): reference skipped' };
  const res = spawnSync(py, ['bench/ref/torch_ops.py'], { encoding: 'utf8', maxBuffer: 1 << 20 });
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

function printTable(rows: Row[], ref: Record<string, RefRow>): void {
  const header = ['op', 'shape', 'sparkts GFLOP/s', 'ms', 'PyTorch GFLOP/s', 'ms', 'sparkts / PyTorch'];
  const body = rows.map((r) => {
    const t = ref[r.name];
    return [
      r.name, r.shape, r.gflops.toFixed(2), r.ms.toFixed(1),
      t ? t.gflops.toFixed(2) : '–', t ? t.ms.toFixed(1) : '–', t ? `${(r.gflops / t.gflops).toFixed(3)}x` : '–',
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => pad(c, widths[i])).join(' | ')} |`;
  console.log(line(header));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  body.forEach((b) => console.log(line(b)));
}

async function main(): Promise<void> {
  console.log(`sparkts bench — ${new Date().toISOString().slice(0, 10)}, ${cpus().length} cores (${cpus()[0]?.model ?? 'unknown cpu'}), node ${process.version}`);
  const rows = await benchKernels();
  const ref = torchReference();
  if (ref.note) console.log(ref.note);
  printTable(rows, ref.rows);
}

await main();
