/**
 * The gpu backend against the cpu backend, per op and for a SparK training step, in every gpu.js mode this
 * process can start (headless GL needs an X display: run `xvfb-run -a npm run bench`; WebGPU needs an
 * adapter). Inputs live on the device before timing; each timed call ends by reading one number back (a sum
 * on the device), which waits for the GPU to finish. gpu.js's CPU mode (a JS interpreter of the kernels) is
 * left out: it is a correctness fallback, not a fast path.
 */
import { F, models, manualSeed, randn, SparK, setBackend, sum, tidy, optim, backend, type Tensor } from '../src/index.ts';
import { bestMs } from './timing.ts';

export type GpuRow = { name: string; shape: string; cpuMs: number; gpu: Record<string, number | string> };

const MODES = ['headlessgl', 'webgpu', 'webasm'] as const;

interface Case { name: string; shape: string; inputs: () => Tensor[]; run: (xs: Tensor[]) => Tensor }

const CASES: Case[] = [
  {
    name: 'matmul', shape: '256x256x256',
    inputs: () => [randn([256, 256]), randn([256, 256])],
    run: ([a, b]) => a.matmul(b),
  },
  {
    name: 'conv3x3 fwd', shape: 'N8 C32->32 24x24',
    inputs: () => [randn([8, 32, 24, 24]), randn([32, 32, 3, 3])],
    run: ([x, w]) => F.conv2d(x, w, undefined, { padding: 1 }),
  },
  {
    name: 'conv3x3 fwd+bwd', shape: 'N8 C32->32 24x24',
    inputs: () => {
      const w = randn([32, 32, 3, 3]);
      w.requiresGrad = true;
      return [randn([8, 32, 24, 24]), w];
    },
    run: ([x, w]) => {
      w.grad = null;
      sum(F.conv2d(x, w, undefined, { padding: 1 })).backward();
      return w.grad!;
    },
  },
  {
    name: 'convTranspose k4s2', shape: 'N8 C32->16 12x12',
    inputs: () => [randn([8, 32, 12, 12]), randn([32, 16, 4, 4])],
    run: ([x, w]) => F.convTranspose2d(x, w, undefined, { stride: 2, padding: 1 }),
  },
  {
    name: 'batchNorm fwd', shape: '8x32x24x24',
    inputs: () => [randn([8, 32, 24, 24])],
    run: ([x]) => F.batchNorm(x, null, null, null, null, { training: true }),
  },
  {
    name: 'add (channel broadcast)', shape: '8x32x24x24 + 32x1x1',
    inputs: () => [randn([8, 32, 24, 24]), randn([32, 1, 1])],
    run: ([x, b]) => x.add(b),
  },
];

/** ms of one call of c (inputs on the current backend's device), finished by reading a sum back. */
function timeCase(c: Case, onDevice: boolean): number {
  const xs = c.inputs();
  if (onDevice) xs.forEach((x) => x.toDevice());
  return bestMs(() => tidy(() => sum(c.run(xs)).item()), 1, 3);
}

function sparkStep(onDevice: boolean): number {
  manualSeed(0);
  const enc = models.resnet({ block: 'basic', layers: [1, 1, 1, 1], widths: [16, 32, 64, 128] });
  const spark = new SparK(enc, { inputSize: 64, maskRatio: 0.6, decoderWidth: 64, densifyNorm: 'bn' });
  if (onDevice) spark.toDevice();
  const opt = new optim.LAMB(spark.parameters(), { lr: 1e-4 });
  const x = randn([4, 3, 64, 64]);
  return bestMs(() => tidy(() => {
    const out = spark.forward(x);
    out.loss.backward();
    opt.step();
    opt.zeroGrad();
    return out.loss.item();
  }), 1, 3);
}

export async function benchGpu(): Promise<{ rows: GpuRow[]; modes: Record<string, string> }> {
  await setBackend('cpu');
  const rows: GpuRow[] = CASES.map((c) => ({ name: c.name, shape: c.shape, cpuMs: timeCase(c, false), gpu: {} }));
  const stepRow: GpuRow = { name: 'SparK step (fwd+bwd+LAMB)', shape: 'resnet 16..128, 64x64, batch 4, dec 64', cpuMs: sparkStep(false), gpu: {} };
  rows.push(stepRow);
  const modes: Record<string, string> = {};
  for (const mode of MODES) {
    try {
      await setBackend('gpu', { mode });
      modes[mode] = backend().name;
    } catch (e) {
      modes[mode] = `absent: ${(e as Error).message.split('\n')[0]}`;
      for (const r of rows) r.gpu[mode] = 'absent';
      continue;
    }
    CASES.forEach((c, i) => {
      try {
        rows[i].gpu[mode] = timeCase(c, true);
      } catch (e) {
        rows[i].gpu[mode] = `failed: ${(e as Error).message.split('\n')[0]}`;
      }
    });
    try {
      stepRow.gpu[mode] = sparkStep(true);
    } catch (e) {
      stepRow.gpu[mode] = `failed: ${(e as Error).message.split('\n')[0]}`;
    }
    await setBackend('cpu');
  }
  return { rows, modes };
}
