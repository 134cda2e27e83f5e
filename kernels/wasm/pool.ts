/**
 * A pool of worker threads that run exports of one WebAssembly module over one shared WebAssembly.Memory.
 * `run(name, argsPerThread)` hands argument list i to thread i (the calling thread takes list 0), runs its own
 * share, and returns when every share is done — a synchronous call, like the kernels it parallelises.
 * Idle workers sleep in Atomics.wait (no busy-waiting); the caller sleeps the same way until the others finish.
 *
 * Control block (Int32Array over a SharedArrayBuffer), one slot of SLOT ints per worker:
 *   [state, export index, argc, args…]   state: 0 idle, 1 work posted, 2 done, 3 failed, 4 exit
 * Left out: work stealing, nested runs (a kernel never calls run from a worker).
 */
import { Worker } from 'node:worker_threads';

const SLOT = 32;
const MAX_ARGS = SLOT - 3;
const IDLE = 0, POSTED = 1, DONE = 2, FAILED = 3, EXIT = 4;

/** The worker's whole program: instantiate the module on the shared memory, then serve the slot forever. */
const WORKER_SOURCE = `
const { workerData } = require('node:worker_threads');
const { module, memory, importModule, importName, names, control, slot } = workerData;
const ctrl = new Int32Array(control);
const instance = new WebAssembly.Instance(module, { [importModule]: { [importName]: memory } });
const fns = names.map((n) => instance.exports[n]);
const base = slot * ${SLOT};
for (;;) {
  Atomics.wait(ctrl, base, ${IDLE});
  const state = Atomics.load(ctrl, base);
  if (state === ${EXIT}) break;
  if (state !== ${POSTED}) continue;
  const argc = ctrl[base + 2];
  const args = [];
  for (let i = 0; i < argc; i++) args.push(ctrl[base + 3 + i]);
  try {
    fns[ctrl[base + 1]](...args);
    Atomics.store(ctrl, base, ${DONE});
  } catch (e) {
    Atomics.store(ctrl, base, ${FAILED});
  }
  Atomics.notify(ctrl, base);
}
`;

export interface PoolOptions {
  /** how the module imports its memory, e.g. ('env', 'memory') */
  importModule: string;
  importName: string;
  /** the exports that may be run (i32 arguments only) */
  names: readonly string[];
}

export class ThreadPool {
  readonly threads: number;
  private readonly workers: Worker[] = [];
  private readonly ctrl: Int32Array;
  private readonly index: Map<string, number>;

  /** `threads` counts the calling thread: a pool of 2 starts one worker. */
  constructor(threads: number, module: WebAssembly.Module, memory: WebAssembly.Memory, private readonly local: Record<string, (...args: number[]) => void>, options: PoolOptions) {
    if (!(Number.isInteger(threads) && threads >= 1)) throw new Error(`ThreadPool: threads must be a positive integer, got ${threads}`);
    this.threads = threads;
    this.index = new Map(options.names.map((n, i) => [n, i]));
    this.ctrl = new Int32Array(new SharedArrayBuffer(4 * SLOT * Math.max(1, threads - 1)));
    for (let slot = 0; slot < threads - 1; slot++) {
      const worker = new Worker(WORKER_SOURCE, {
        eval: true,
        workerData: { module, memory, importModule: options.importModule, importName: options.importName, names: options.names, control: this.ctrl.buffer, slot },
      });
      worker.unref(); // an idle pool never keeps the process alive
      this.workers.push(worker);
    }
  }

  /** Run export `name` once per argument list, list 0 on the calling thread; returns when all are done. */
  run(name: string, argsPerThread: readonly (readonly number[])[]): void {
    const fn = this.index.get(name);
    if (fn === undefined) throw new Error(`ThreadPool.run: '${name}' is not one of the pool's exports`);
    if (argsPerThread.length > this.threads) throw new Error(`ThreadPool.run: ${argsPerThread.length} shares for ${this.threads} threads`);
    const ctrl = this.ctrl;
    for (let t = 1; t < argsPerThread.length; t++) {
      const args = argsPerThread[t];
      if (args.length > MAX_ARGS) throw new Error(`ThreadPool.run: at most ${MAX_ARGS} arguments`);
      const base = (t - 1) * SLOT;
      ctrl[base + 1] = fn;
      ctrl[base + 2] = args.length;
      for (let i = 0; i < args.length; i++) ctrl[base + 3 + i] = args[i];
      Atomics.store(ctrl, base, POSTED);
      Atomics.notify(ctrl, base);
    }
    if (argsPerThread.length > 0) this.local[name](...argsPerThread[0]);
    let failed = false;
    for (let t = 1; t < argsPerThread.length; t++) {
      const base = (t - 1) * SLOT;
      Atomics.wait(ctrl, base, POSTED);
      if (Atomics.load(ctrl, base) === FAILED) failed = true;
      Atomics.store(ctrl, base, IDLE);
    }
    if (failed) throw new Error(`ThreadPool.run: '${name}' failed on a worker thread`);
  }

  /** Stop the workers. */
  close(): void {
    for (let slot = 0; slot < this.workers.length; slot++) {
      Atomics.store(this.ctrl, slot * SLOT, EXIT);
      Atomics.notify(this.ctrl, slot * SLOT);
    }
    this.workers.length = 0;
  }
}
