/**
 * The backend registry: which backend ops run on. `cpu` is always there; `gpu` (gpu.js) is loaded by a
 * dynamic import the first time it is selected, so importing sparkts pulls in no GPU code. This is the one
 * piece of module-level mutable state the library keeps (with grad mode and the default random generator).
 */
import type { Backend } from './backend.ts';
import type { GpuMode } from '../../kernels/gpu/runtime.ts';
import { cpuBackend } from './cpu.ts';

export type BackendName = 'cpu' | 'gpu';

export interface BackendOptions {
  /**
   * gpu.js mode for `gpu`: 'gpu' (default: the best present — headless GL in Node under an X display, WebGL2
   * or WebGL in a browser, else gpu.js's WebAssembly kernels), or one of 'headlessgl', 'webgl2', 'webgl',
   * 'webgpu', 'webasm', 'cpu'. A mode that cannot start here is an error naming it.
   */
  mode?: GpuMode;
}

let current: Backend = cpuBackend;
const started = new Map<string, Backend>();

export function backend(): Backend {
  return current;
}

export function getBackendName(): string {
  return current.name;
}

/** Select the backend for subsequent ops (`await setBackend('gpu', { mode: 'headlessgl' })`). */
export async function setBackend(name: BackendName, options: BackendOptions = {}): Promise<void> {
  if (name === 'cpu') {
    current = cpuBackend;
    return;
  }
  if (name !== 'gpu') throw new Error(`setBackend: unknown backend '${String(name)}' (expected 'cpu' or 'gpu')`);
  const mode = options.mode ?? 'gpu';
  let gpu = started.get(mode);
  if (!gpu) {
    const { createGpuBackend } = await import('./gpu.ts');
    gpu = await createGpuBackend(mode);
    started.set(mode, gpu);
  }
  current = gpu;
}
