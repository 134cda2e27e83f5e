/**
 * Shared by the gpu.js kernel tests: one runtime per gpu.js mode this machine has (headless GL needs an X
 * display, e.g. `xvfb-run`; WebGPU needs an adapter), tests registered per mode, and the check that the
 * Kernel class that ran is the mode's own (gpu.js falls back silently). An absent mode registers skipped
 * tests, never passed ones; a mode named in SPARKTS_GPU_REQUIRE (comma-separated) that is absent fails.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRequire } from 'node:module';
import { startRuntime, KERNEL_CLASS, type GpuJsModule, type GpuMode, type GpuRuntime } from '../../../kernels/gpu/runtime.ts';

export { seeded, randomF32, abs64, assertClose, U32 } from '../wasm/helpers.ts';

type Concrete = Exclude<GpuMode, 'gpu'>;

interface ModeCase { mode: Concrete; rt: GpuRuntime | null; why: string }

const CANDIDATES: Concrete[] = ['headlessgl', 'webgpu', 'webasm', 'cpu'];

// loaded synchronously: uvu registers tests while the file loads, so which modes exist must be known then
const gpujs = createRequire(__filename)('gpu.js') as GpuJsModule;

function start(mode: Concrete): ModeCase {
  try {
    return { mode, rt: startRuntime(gpujs, mode), why: '' };
  } catch (e) {
    return { mode, rt: null, why: (e as Error).message.split('\n')[0] };
  }
}

export const MODES: ModeCase[] = CANDIDATES.map(start);

const required = (process.env.SPARKTS_GPU_REQUIRE ?? '').split(',').map((s) => s.trim()).filter(Boolean);

/** Register `name [mode]` for every mode: run fn on the mode's runtime and check its Kernel class ran. */
export function forEachMode(name: string, fn: (rt: GpuRuntime) => void): void {
  for (const { mode, rt, why } of MODES) {
    const title = `${name} [${mode}]`;
    if (!rt) {
      if (required.includes(mode)) test(title, () => assert.unreachable(`mode ${mode} is required (SPARKTS_GPU_REQUIRE) but absent: ${why}`));
      else test.skip(`${title} (absent: ${why})`, () => {});
      continue;
    }
    test(title, () => {
      fn(rt);
      assert.is(rt.kernelClass, KERNEL_CLASS[mode], `${title}: the kernels ran on ${rt.kernelClass}`);
    });
  }
}
