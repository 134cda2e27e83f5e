/**
 * The backend registry: which backend ops run on. `cpu` is always there. This is the one piece of
 * module-level mutable state the library keeps (with grad mode and the default random generator).
 */
import type { Backend } from './backend.ts';
import { cpuBackend } from './cpu.ts';

export type BackendName = 'cpu' | 'gpu';

let current: Backend = cpuBackend;

export function backend(): Backend {
  return current;
}

export function getBackendName(): string {
  return current.name;
}

/** Select the backend for subsequent ops. Only `cpu` exists in this version; `gpu` says so. */
export async function setBackend(name: BackendName): Promise<void> {
  if (name === 'cpu') {
    current = cpuBackend;
    return;
  }
  throw new Error(`setBackend: the '${name}' backend is not available in this version of sparkts (only 'cpu')`);
}
