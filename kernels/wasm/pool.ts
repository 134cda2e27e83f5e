/**
 * A pool of worker threads that run exports of one WebAssembly module over one shared WebAssembly.Memory.
 * `run(name, argsPerThread)` hands argument list i to thread i (the calling thread takes list 0), runs its own
 * share, and returns when every share is done — a synchronous call, like the kernels it parallelises.
 * `runPrograms(programs)` does the same with a list of calls per thread, run in order: a thread's whole share of
 * a multi-step kernel (say im2col, packing and the gemm blocks of each of its images) for one wake-up and one
 * wait, instead of one per step.
 * Idle workers sleep in Atomics.wait after a short spin (SPIN); the caller waits the same way for the others.
 *
 * Control block (Int32Array over a SharedArrayBuffer), one slot of SLOT ints per worker:
 *   [state, export index, argc, args…]   state: 0 idle, 1 work posted, 2 done, 3 failed, 4 exit
 *   export index −1: run the program of `args[0]` calls in the worker's region of the program buffer (PROGRAM
 *   ints per worker), each call encoded as [export index, argc, args…].
 *   export index −2: take tasks from the task buffer until none is left (args: [this thread's base]).
 * `runTasks(tasks, bases)` hands out tasks (lists of calls) dynamically: each thread, the caller included, claims
 * the next unclaimed task with an atomic counter, so a thread slowed by other work simply runs fewer of them.
 * A task's arguments below zero are addresses in the running thread's own area: `local(offset)` encodes offset
 * bytes past that thread's base (absolute addresses are below 2³¹: the memory is at most 2 GiB).
 * Task buffer (Int32Array, TASKS ints): [counter, count, offset of task 0 … count − 1, then each task as
 * [calls, (export index, argc, args…)…]].
 * Left out: nested runs (a kernel never calls run from a worker).
 */
import { Worker } from 'node:worker_threads';

const SLOT = 32;
const MAX_ARGS = SLOT - 3;
/** Ints of program per worker (64 KiB); a longer program runs in several rounds. */
const PROGRAM = 16384;
const RUN_PROGRAM = -1;
const RUN_TASKS = -2;
/** Ints in the task buffer (1 MiB); more tasks than fit run as per-thread programs (static shares). */
const TASKS = 1 << 18;
const LOCAL = 2 ** 31;
/**
 * Checks of a worker's state before sleeping on it (about 0.25 ms here), on both sides: a worker that has just
 * finished keeps watching for the next job, and a caller joining keeps watching for the reply, since a futex
 * wake-up in a VM costs as much as a small job. Measured in the ResNet-18 step (2 threads): the caller's time in
 * join fell from 74 to 30–38 ms per step with this and retracting unstarted task runs, and in post from 19 to 12.
 */
const SPIN = 1 << 14;

/** Whether a worker's slot state means its job is not finished. */
const busy = (state: number) => state === POSTED || state === RUNNING;

/** A task argument naming `offset` bytes past the running thread's base (see runTasks). */
export function local(offset: number): number {
  return offset - LOCAL;
}

/** A task's arguments for the thread whose area starts at `base` (the workers do the same in WORKER_SOURCE). */
function relocate(args: readonly number[], base: number): number[] {
  return args.map((v) => (v < 0 ? v + LOCAL + base : v));
}
const IDLE = 0, POSTED = 1, DONE = 2, FAILED = 3, EXIT = 4, RUNNING = 5;

/** The worker's whole program: instantiate the module on the shared memory, then serve the slot forever. */
const WORKER_SOURCE = `
const { workerData } = require('node:worker_threads');
const { module, memory, importModule, importName, names, control, program, tasks, slot } = workerData;
const ctrl = new Int32Array(control);
const prog = new Int32Array(program, slot * ${PROGRAM} * 4, ${PROGRAM});
const task = new Int32Array(tasks);
const instance = new WebAssembly.Instance(module, { [importModule]: { [importName]: memory } });
const fns = names.map((n) => instance.exports[n]);
const base = slot * ${SLOT};
for (;;) {
  for (let i = 0; i < ${SPIN} && Atomics.load(ctrl, base) !== ${POSTED}; i++);
  Atomics.wait(ctrl, base, ${IDLE});
  const state = Atomics.load(ctrl, base);
  if (state === ${EXIT}) break;
  // claim the job; the caller may have taken back a task run it finished alone (see runTasks)
  if (state !== ${POSTED} || Atomics.compareExchange(ctrl, base, ${POSTED}, ${RUNNING}) !== ${POSTED}) continue;
  const argc = ctrl[base + 2];
  const args = [];
  for (let i = 0; i < argc; i++) args.push(ctrl[base + 3 + i]);
  try {
    const fn = ctrl[base + 1];
    if (fn === ${RUN_PROGRAM}) {
      for (let k = 0, p = 0; k < args[0]; k++) {
        const argc = prog[p + 1];
        fns[prog[p]](...prog.subarray(p + 2, p + 2 + argc));
        p += 2 + argc;
      }
    } else if (fn === ${RUN_TASKS}) {
      const base = args[0], count = task[1];
      for (let k = Atomics.add(task, 0, 1); k < count; k = Atomics.add(task, 0, 1)) {
        let p = task[2 + k];
        const calls = task[p++];
        for (let c = 0; c < calls; c++) {
          const f = task[p], argc = task[p + 1];
          const a = new Array(argc);
          for (let i = 0; i < argc; i++) { const v = task[p + 2 + i]; a[i] = v < 0 ? v + ${LOCAL} + base : v; }
          fns[f](...a);
          p += 2 + argc;
        }
      }
    } else {
      fns[fn](...args);
    }
    Atomics.store(ctrl, base, ${DONE});
  } catch (e) {
    Atomics.store(ctrl, base, ${FAILED});
  }
  Atomics.notify(ctrl, base);
}
`;

/** One call of a program: an export's name and its i32 arguments. */
export type ProgramCall = readonly [name: string, args: readonly number[]];

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
  private readonly program: Int32Array;
  private readonly tasks: Int32Array;
  private readonly index: Map<string, number>;

  /** `threads` counts the calling thread: a pool of 2 starts one worker. */
  constructor(threads: number, module: WebAssembly.Module, memory: WebAssembly.Memory, private readonly local: Record<string, (...args: number[]) => void>, options: PoolOptions) {
    if (!(Number.isInteger(threads) && threads >= 1)) throw new Error(`ThreadPool: threads must be a positive integer, got ${threads}`);
    this.threads = threads;
    this.index = new Map(options.names.map((n, i) => [n, i]));
    this.ctrl = new Int32Array(new SharedArrayBuffer(4 * SLOT * Math.max(1, threads - 1)));
    this.program = new Int32Array(new SharedArrayBuffer(4 * PROGRAM * Math.max(1, threads - 1)));
    this.tasks = new Int32Array(new SharedArrayBuffer(4 * TASKS));
    for (let slot = 0; slot < threads - 1; slot++) {
      const worker = new Worker(WORKER_SOURCE, {
        eval: true,
        workerData: {
          module, memory, importModule: options.importModule, importName: options.importName, names: options.names,
          control: this.ctrl.buffer, program: this.program.buffer, tasks: this.tasks.buffer, slot,
        },
      });
      worker.unref(); // an idle pool never keeps the process alive
      this.workers.push(worker);
    }
  }

  private exportIndex(name: string, what: string): number {
    const fn = this.index.get(name);
    if (fn === undefined) throw new Error(`ThreadPool.${what}: '${name}' is not one of the pool's exports`);
    return fn;
  }

  /** Posts export `fn` (or RUN_PROGRAM) with `args` to worker slot t − 1. */
  private post(t: number, fn: number, args: readonly number[]): void {
    const ctrl = this.ctrl, base = (t - 1) * SLOT;
    if (args.length > MAX_ARGS) throw new Error(`ThreadPool.run: at most ${MAX_ARGS} arguments`);
    ctrl[base + 1] = fn;
    ctrl[base + 2] = args.length;
    for (let i = 0; i < args.length; i++) ctrl[base + 3 + i] = args[i];
    Atomics.store(ctrl, base, POSTED);
    Atomics.notify(ctrl, base);
  }

  /**
   * Waits for workers 1 … shares − 1; true when one of them failed. `retract`: a worker that has not started yet
   * is not waited for (its job is taken back), for task runs whose tasks are all claimed by now.
   */
  private join(shares: number, retract = false): boolean {
    const ctrl = this.ctrl;
    let failed = false;
    for (let t = 1; t < shares; t++) {
      const base = (t - 1) * SLOT;
      if (retract && Atomics.compareExchange(ctrl, base, POSTED, IDLE) === POSTED) continue;
      // A wake-up is not a reply: the worker's notify after its previous share can land in this wait, after this
      // thread has already seen that share done and posted the next one. So wait until the state has moved on.
      for (let i = 0; i < SPIN && busy(Atomics.load(ctrl, base)); i++);
      for (let s = Atomics.load(ctrl, base); busy(s); s = Atomics.load(ctrl, base)) Atomics.wait(ctrl, base, s);
      if (Atomics.load(ctrl, base) === FAILED) failed = true;
      Atomics.store(ctrl, base, IDLE);
    }
    return failed;
  }

  /** Run export `name` once per argument list, list 0 on the calling thread; returns when all are done. */
  run(name: string, argsPerThread: readonly (readonly number[])[]): void {
    const fn = this.exportIndex(name, 'run');
    if (argsPerThread.length > this.threads) throw new Error(`ThreadPool.run: ${argsPerThread.length} shares for ${this.threads} threads`);
    for (let t = 1; t < argsPerThread.length; t++) this.post(t, fn, argsPerThread[t]);
    if (argsPerThread.length > 0) this.local[name](...argsPerThread[0]);
    if (this.join(argsPerThread.length)) throw new Error(`ThreadPool.run: '${name}' failed on a worker thread`);
  }

  /**
   * Runs program i (a list of [export, args] calls, in order) on thread i, program 0 on the calling thread;
   * returns when all are done. A program too long for the worker's region runs in rounds (each round ends when
   * every thread has finished its part of it).
   */
  runPrograms(programs: readonly (readonly ProgramCall[])[]): void {
    if (programs.length > this.threads) throw new Error(`ThreadPool.runPrograms: ${programs.length} programs for ${this.threads} threads`);
    const next = programs.map(() => 0);
    while (programs.some((p, t) => next[t] < p.length)) {
      // encode as much of each worker's program as fits its region
      for (let t = 1; t < programs.length; t++) {
        const region = this.program.subarray((t - 1) * PROGRAM, t * PROGRAM);
        let at = 0, count = 0;
        for (const prog = programs[t]; next[t] < prog.length; next[t]++, count++) {
          const [name, args] = prog[next[t]];
          if (args.length > MAX_ARGS) throw new Error(`ThreadPool.runPrograms: at most ${MAX_ARGS} arguments`);
          if (at + 2 + args.length > PROGRAM) break;
          region[at] = this.exportIndex(name, 'runPrograms');
          region[at + 1] = args.length;
          region.set(args, at + 2);
          at += 2 + args.length;
        }
        this.post(t, RUN_PROGRAM, [count]);
      }
      // the calling thread runs its own program whole in the first round
      if (programs.length > 0) {
        for (; next[0] < programs[0].length; next[0]++) {
          const [name, args] = programs[0][next[0]];
          this.exportIndex(name, 'runPrograms');
          this.local[name](...args);
        }
      }
      if (this.join(programs.length)) throw new Error('ThreadPool.runPrograms: a program failed on a worker thread');
    }
  }

  /**
   * Runs every task (a list of calls, in order) once, on whichever thread claims it first; bases[t] is thread t's
   * base for `local` arguments (thread 0 is the caller; fewer bases than threads use fewer threads). Returns when
   * all are done. Where the tasks do not fit the task buffer, they are dealt out round-robin as per-thread
   * programs instead. `fixed`: thread t runs the t-th contiguous run of tasks instead, for passes whose threads
   * sum into areas of their own (which thread ran which task would otherwise change the rounding).
   */
  runTasks(tasks: readonly (readonly ProgramCall[])[], bases: readonly number[], fixed = false): void {
    if (bases.length < 1 || bases.length > this.threads) throw new Error(`ThreadPool.runTasks: ${bases.length} bases for ${this.threads} threads`);
    if (fixed) {
      // thread t runs a fixed, contiguous run of the tasks, in order: what it sums into its own area does not
      // depend on timing, so results are the same from run to run
      const per = Math.ceil(tasks.length / bases.length);
      return this.runDealt(tasks, bases, (k) => Math.floor(k / per));
    }
    const buf = this.tasks;
    let at = 2 + tasks.length;
    const fits = at <= TASKS && tasks.every((calls, k) => {
      buf[2 + k] = at;
      if (at + 1 > TASKS) return false;
      buf[at++] = calls.length;
      for (const [name, args] of calls) {
        if (args.length > MAX_ARGS) throw new Error(`ThreadPool.runTasks: at most ${MAX_ARGS} arguments`);
        if (at + 2 + args.length > TASKS) return false;
        buf[at] = this.exportIndex(name, 'runTasks');
        buf[at + 1] = args.length;
        buf.set(args, at + 2);
        at += 2 + args.length;
      }
      return true;
    });
    if (!fits) return this.runDealt(tasks, bases, (k) => k % bases.length);
    Atomics.store(buf, 0, 0);
    buf[1] = tasks.length;
    const workers = Math.min(bases.length, tasks.length);
    for (let t = 1; t < workers; t++) this.post(t, RUN_TASKS, [bases[t]]);
    let failure: unknown = null;
    try {
      for (let k = Atomics.add(buf, 0, 1); k < tasks.length; k = Atomics.add(buf, 0, 1)) {
        for (const [name, args] of tasks[k]) this.local[name](...relocate(args, bases[0]));
      }
    } catch (e) {
      // stop handing out tasks, and let the workers finish theirs before reporting
      Atomics.store(buf, 0, tasks.length);
      failure = e;
    }
    if (this.join(workers, true) && failure === null) failure = new Error('ThreadPool.runTasks: a task failed on a worker thread');
    if (failure !== null) throw failure;
  }

  /** Tasks dealt out as per-thread programs: task k to thread owner(k), its local arguments on that thread's base. */
  private runDealt(tasks: readonly (readonly ProgramCall[])[], bases: readonly number[], owner: (k: number) => number): void {
    const programs = bases.map((base, t) => tasks.filter((_, k) => owner(k) === t)
      .flatMap((calls) => calls.map(([name, args]): ProgramCall => [name, relocate(args, base)])));
    this.runPrograms(programs.filter((prog, t) => t === 0 || prog.length > 0));
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
