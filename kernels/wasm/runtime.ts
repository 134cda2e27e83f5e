/**
 * The WebAssembly runtime of the SIMD kernels: feature detection, the compiled kernel module, its memory and an
 * arena allocator over that memory.
 *
 * - Detection: SIMD (f32x4) and relaxed SIMD are probed with `WebAssembly.validate` on tiny modules. The kernels
 *   need SIMD; relaxed SIMD (`f32x4.relaxed_madd`, a fused multiply-add where the CPU has one) is used when the
 *   runtime validates it (Node 20 does so only under `--experimental-wasm-relaxed-simd`). `SPARKTS_WASM=0`
 *   turns the whole path off, `SPARKTS_WASM_RELAXED=0` turns off relaxed SIMD.
 * - Memory: one `WebAssembly.Memory`, imported by the module (so a later worker pool can instantiate the same
 *   module over the same memory). By default not shared and growable without bound; `{ shared: true }` makes it
 *   a shared memory with a fixed maximum, so that every worker sees the same bytes. Growing a non-shared memory
 *   detaches the old ArrayBuffer: read `rt.f32` / `rt.i32` again after any `alloc` (they are refreshed there).
 * - Allocation: a bump arena with stack discipline. `alloc(n)` returns the byte address of n float32 slots,
 *   64-byte aligned (a cache line, and 16 for v128); `mark()` / `reset(mark)` free everything allocated after the
 *   mark. Every kernel marks on entry and resets on exit, so the arena holds nothing between kernel calls; it
 *   only keeps the pages it grew to. Allocation happens on the calling (main) thread; workers get addresses.
 * - The default runtime (`getRuntime()`) is created on first use and kept as a cache of a compiled module and of
 *   memory (the only module-level state here; it carries no data from one kernel call to the next).
 * Left out: freeing pages back (a memory never shrinks), multiple memories.
 */
import { availableParallelism } from 'node:os';
import { ModuleBuilder, type FunctionBuilder } from './builder.ts';
import { BINARY_OPS, UNARY_OPS, buildKernelModule, type KernelExports } from './module.ts';
import { local, ThreadPool, type ProgramCall } from './pool.ts';

/** The WebAssembly global (typed by src/types/webassembly.d.ts), or undefined where the runtime has none. */
function wasmApi(): typeof WebAssembly | undefined {
  return typeof WebAssembly === 'object' ? WebAssembly : undefined;
}

function env(name: string): string | undefined {
  return (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env?.[name];
}

/** `WebAssembly.validate`, false where there is no WebAssembly at all. */
export function validateWasm(bytes: Uint8Array): boolean {
  const api = wasmApi();
  return api !== undefined && api.validate(bytes);
}

/** A module whose single function runs `body`: the probe for one feature. */
function probe(body: (f: FunctionBuilder) => void): Uint8Array {
  const m = new ModuleBuilder();
  m.func('probe', [], [], body);
  return m.build();
}

/** Does this runtime validate 128-bit SIMD (f32x4 arithmetic)? */
export function detectSimd(): boolean {
  return validateWasm(probe((f) => f.v128ConstF32([1, 2, 3, 4]).v128ConstF32([1, 1, 1, 1]).f32x4Mul().drop()));
}

/** Does this runtime validate relaxed SIMD (f32x4.relaxed_madd)? */
export function detectRelaxedSimd(): boolean {
  return validateWasm(probe((f) => f.v128ConstF32([1, 2, 3, 4]).v128ConstF32([1, 1, 1, 1]).v128ConstF32([0, 0, 0, 0])
    .f32x4RelaxedMadd().drop()));
}

const PAGE = 65536;
/** The first bytes of memory are never handed out, so that address 0 is never a valid buffer. */
const BASE = 1024;
const ALIGN = 64;
/**
 * Bytes of resident blocks (see residentFloat32) a runtime hands out at most, half of the default maximum memory,
 * so that the arena keeps room; past it, callers allocate ordinary arrays.
 */
const RESIDENT_MAX_BYTES = 1 << 30;

export interface RuntimeOptions {
  /** Use relaxed SIMD: default where detected (and not turned off by SPARKTS_WASM_RELAXED=0). */
  relaxed?: boolean;
  /** A shared memory (for workers). Default false. */
  shared?: boolean;
  /** Threads the kernels may use, the calling one included; more than 1 needs a shared memory. Default 1. */
  threads?: number;
  /** Initial memory in 64 KiB pages. Default 256 (16 MiB). */
  initialPages?: number;
  /** Maximum pages of a shared memory. Default 32768 (2 GiB). */
  maximumPages?: number;
}

/** A compiled kernel module, its memory and the arena over it. */
export class WasmRuntime {
  readonly memory: WebAssembly.Memory;
  readonly kernels: KernelExports;
  /** The compiled module, for instantiating it again in a worker over the same (shared) memory. */
  readonly module: WebAssembly.Module;
  readonly relaxed: boolean;
  readonly shared: boolean;
  /** float32 and int32 views of the whole memory (refreshed whenever `alloc` grows it). */
  f32!: Float32Array;
  i32!: Int32Array;
  /** Threads the kernels use (1: this thread only). */
  readonly threads: number;
  private top = BASE;
  /** The arena's bottom: resident blocks lie between BASE and here. */
  private floor = BASE;
  private workers: ThreadPool | null = null;
  /** Every buffer object this memory has had (a grown shared memory hands out a new one each time). */
  private readonly buffers = new WeakSet<ArrayBufferLike>();
  /** Resident blocks whose arrays were collected, for reuse (first fit). */
  private readonly freeBlocks: { ptr: number; bytes: number }[] = [];
  private residentBytes = 0;
  private readonly collected = new FinalizationRegistry<{ ptr: number; bytes: number }>((block) => {
    this.freeBlocks.push(block);
    this.residentBytes -= block.bytes;
  });

  constructor(opts: RuntimeOptions = {}) {
    const api = wasmApi();
    if (!api) throw new Error('WebAssembly is not available');
    if (!detectSimd()) throw new Error('WebAssembly SIMD is not available');
    this.relaxed = opts.relaxed ?? (env('SPARKTS_WASM_RELAXED') !== '0' && detectRelaxedSimd());
    if (this.relaxed && !detectRelaxedSimd()) throw new Error('relaxed SIMD asked for but not available');
    this.threads = Math.max(1, Math.floor(opts.threads ?? 1));
    this.shared = opts.shared ?? this.threads > 1;
    if (this.threads > 1 && !this.shared) throw new Error('more than one thread needs a shared memory');
    const initial = opts.initialPages ?? 256;
    const maximum = opts.maximumPages ?? 32768;
    const bytes = buildKernelModule({ relaxed: this.relaxed, shared: this.shared, maximumPages: maximum });
    this.module = new api.Module(bytes);
    this.memory = new api.Memory(this.shared ? { initial, maximum, shared: true } : { initial });
    const instance = new api.Instance(this.module, { env: { memory: this.memory } });
    this.kernels = instance.exports as unknown as KernelExports;
    this.refreshViews();
  }

  /** 'wasm-relaxed-simd' or 'wasm-simd128', with the thread count. */
  get description(): string {
    return `${this.relaxed ? 'wasm-relaxed-simd' : 'wasm-simd128'}, ${this.threads} thread${this.threads > 1 ? 's' : ''}`;
  }

  /** The worker pool (threads − 1 workers over this memory), started on first use; null with one thread. */
  pool(): ThreadPool | null {
    if (this.threads <= 1) return null;
    this.workers ??= new ThreadPool(this.threads, this.module, this.memory, this.kernels as unknown as Record<string, (...args: number[]) => void>,
      { importModule: 'env', importName: 'memory', names: POOL_EXPORTS });
    return this.workers;
  }

  /**
   * Runs export `name` once per argument list: on the pool when there are several lists (list 0 on this thread),
   * directly when there is one. The lists come from `splitRange` over at most `threads` parts.
   */
  runShares(name: (typeof POOL_EXPORTS)[number], argsPerThread: readonly (readonly number[])[]): void {
    if (argsPerThread.length === 0) return;
    const pool = argsPerThread.length > 1 ? this.pool() : null;
    if (pool) pool.run(name, argsPerThread);
    else for (const args of argsPerThread) (this.kernels[name] as (...a: number[]) => void)(...args);
  }

  /** Runs program t (calls in order) on thread t, on the pool when there are several, else here. */
  runPrograms(programs: readonly (readonly ProgramCall[])[]): void {
    const pool = programs.length > 1 ? this.pool() : null;
    if (pool) return pool.runPrograms(programs);
    const kernels = this.kernels as unknown as Record<string, (...a: number[]) => void>;
    for (const prog of programs) for (const [name, args] of prog) kernels[name](...args);
  }

  /** Splits [0, n) over the threads (splitRange) and runs calls(from, to) of each piece as one program. */
  runSplit(n: number, calls: (from: number, to: number) => ProgramCall[]): void {
    this.runPrograms(splitRange(n, this.threads).map(([from, to]) => calls(from, to)));
  }

  /**
   * Splits [0, n) into about PIECES_PER_THREAD pieces per thread, handed out as tasks (runTasks): for calls that
   * need no per-thread scratch, so that a slowed thread takes fewer pieces.
   */
  runPieces(n: number, calls: (from: number, to: number) => ProgramCall[]): void {
    if (!this.pool()) return this.runSplit(n, calls);
    const pieces = splitRange(n, PIECES_PER_THREAD * this.threads);
    this.runTasks(0, () => pieces.map(([from, to]) => calls(from, to)));
  }

  /** One area of `floats` floats per thread (see runTasks), thread 0's first; `parts` = 1 runs the tasks here. */
  threadAreas(floats: number, parts = this.threads): number[] {
    return Array.from({ length: this.pool() ? Math.min(parts, this.threads) : 1 }, () => this.alloc(floats));
  }

  /**
   * Runs tasks (lists of calls, each in order) over the threads, handed out dynamically (ThreadPool.runTasks):
   * whichever thread runs a task, the task's local(byteOffset) arguments name that thread's own area (from
   * threadAreas, or of `areas` floats). With one thread the tasks run here in order. `fixed` gives each thread a
   * fixed run of the tasks (ThreadPool.runTasks): for per-thread partial sums, which must not depend on timing.
   */
  runTasks(areas: number | readonly number[], build: (local: (byteOffset: number) => number) => ProgramCall[][], fixed = false): void {
    const bases = typeof areas === 'number' ? this.threadAreas(areas) : areas;
    const pool = bases.length > 1 ? this.pool() : null;
    if (!pool) {
      const kernels = this.kernels as unknown as Record<string, (...a: number[]) => void>;
      for (const calls of build((o) => bases[0] + o)) for (const [name, args] of calls) kernels[name](...args);
      return;
    }
    pool.runTasks(build(local), bases, fixed);
  }

  /** out += the n floats at each of `parts` (f32x4 adds, here). */
  addInto(out: number, parts: readonly number[], n: number): void {
    for (const ptr of parts) this.kernels.binary_add(0, out, ptr, out, 0, 1, 1, n, 0, 0, 1);
  }

  /**
   * Zeroes n floats at byte address ptr with memory.fill (16M floats: 6.2 ms as Float32Array.fill, 0.8 ms as
   * memory.fill split over 2 threads), split over the threads from SPLIT_ZERO_MIN floats.
   */
  zero(ptr: number, n: number): void {
    if (n < SPLIT_ZERO_MIN || this.threads === 1) {
      this.kernels.zeroFill(ptr, 4 * n);
      return;
    }
    this.runPieces(n, (a, b) => [['zeroFill', [ptr + 4 * a, 4 * (b - a)]]]);
  }

  /** The kernels' copyPlanes, its planes split over the threads when it moves at least SPLIT_COPY_MIN floats. */
  copyPlanes(src: number, srcPlane: number, srcW: number, dst: number, dstPlane: number, dstW: number, rows: number, cols: number, planes: number): void {
    if (planes * rows * cols < SPLIT_COPY_MIN || this.threads === 1) {
      this.kernels.copyPlanes(src, srcPlane, srcW, dst, dstPlane, dstW, rows, cols, planes);
      return;
    }
    this.runPieces(planes, (a, b) => [['copyPlanes', [src + 4 * a * srcPlane, srcPlane, srcW, dst + 4 * a * dstPlane, dstPlane, dstW, rows, cols, b - a]]]);
  }

  private refreshViews(): void {
    this.buffers.add(this.memory.buffer);
    this.f32 = new Float32Array(this.memory.buffer);
    this.i32 = new Int32Array(this.memory.buffer);
  }

  /** Byte address of `floats` float32 (or int32) slots, 64-byte aligned, valid until the enclosing reset. */
  alloc(floats: number): number {
    const ptr = this.top;
    const end = ptr + Math.ceil((floats * 4) / ALIGN) * ALIGN;
    const have = this.memory.buffer.byteLength;
    if (end > have) {
      // Grow by at least half again what there is, so that a sequence of growing calls stays cheap.
      const need = Math.ceil((end - have) / PAGE);
      this.memory.grow(Math.max(need, Math.ceil(have / PAGE / 2)));
      this.refreshViews();
    }
    this.top = end;
    return ptr;
  }

  mark(): number {
    return this.top;
  }

  /**
   * A float32 array of n zeros that lives in this memory below the arena ("resident"), so that kernels read and
   * write it in place (addressOf) instead of copying it in and out: for long-lived arrays (parameters, their
   * gradients, optimizer state). Its block is reused once the array is garbage collected. Null, and the caller
   * allocates an ordinary array, where the memory is not shared (growing an unshared memory would detach the
   * array), while the arena is in use (inside a kernel call), or past RESIDENT_MAX_BYTES. Every holder of the
   * array must hold this same object: a subarray alone does not keep the block alive.
   */
  residentFloat32(n: number): Float32Array | null {
    if (!this.shared || !(n > 0) || this.top !== this.floor) return null;
    const bytes = Math.ceil((n * 4) / ALIGN) * ALIGN;
    if (this.residentBytes + bytes > RESIDENT_MAX_BYTES) return null;
    let ptr: number;
    const k = this.freeBlocks.findIndex((b) => b.bytes >= bytes);
    if (k >= 0) {
      const block = this.freeBlocks[k];
      ptr = block.ptr;
      if (block.bytes > bytes) Object.assign(block, { ptr: ptr + bytes, bytes: block.bytes - bytes });
      else this.freeBlocks.splice(k, 1);
    } else {
      ptr = this.alloc(bytes / 4);
      this.floor = this.top;
    }
    this.kernels.zeroFill(ptr, bytes); // the arena may have used the block before
    this.residentBytes += bytes;
    // on the buffer object refreshViews registered: `memory.buffer` was seen to hand out another object for the
    // same memory, of the same length (in the wasm kernel tests, after gemm.test.ts), which addressOf would not
    // know; lamb.test.ts's resident case failed that way when run after gemm.test.ts
    const view = new Float32Array(this.f32.buffer, ptr, n);
    this.collected.register(view, { ptr, bytes });
    return view;
  }

  /** a's byte address when it lies in this memory (a resident array), else −1. */
  addressOf(a: Float32Array): number {
    return this.buffers.has(a.buffer) ? a.byteOffset : -1;
  }

  /**
   * The byte address of a's n elements from `from` in memory: in place for a resident array, else copied into
   * the arena (a read-only input; an output written there must be read back by the caller).
   */
  place(a: Float32Array, from = 0, n = a.length - from): number {
    const at = this.addressOf(a);
    if (at >= 0) return at + 4 * from;
    const ptr = this.alloc(n);
    this.write(ptr, a, from, n);
    return ptr;
  }

  reset(mark: number): void {
    this.top = Math.max(mark, this.floor);
  }

  /** Bytes of memory in use by live arena allocations. */
  get used(): number {
    return this.top - this.floor;
  }

  /** Copies src[from, from + n) into memory at byte address ptr. */
  write(ptr: number, src: Float32Array, from = 0, n = src.length - from): void {
    this.f32.set(from === 0 && n === src.length ? src : src.subarray(from, from + n), ptr >>> 2);
  }

  /** Copies n floats at byte address ptr into dst[to, to + n). */
  read(ptr: number, n: number, dst: Float32Array, to = 0): void {
    dst.set(this.f32.subarray(ptr >>> 2, (ptr >>> 2) + n), to);
  }
}

/**
 * Zero fills and plane copies of at least this many floats are split over the threads: memory-bound passes that
 * otherwise ran on the calling thread alone between the parallel stages (about 95 ms of a SparK step). Measured
 * (2 threads, warm memory, one thread → split, ms): zero 1M floats 0.44 → 0.15, 4M 1.76 → 0.39; copy 1M 0.17 →
 * 0.21, 4M 0.71 → 0.62, 16M 3.5 → 2.2.
 */
const SPLIT_ZERO_MIN = 1 << 20;
const SPLIT_COPY_MIN = 1 << 22;
/** Pieces per thread for runPieces. */
const PIECES_PER_THREAD = 4;

/** The exports a worker may run (all take i32 arguments only). */
const POOL_EXPORTS = [
  'macro', 'packA', 'packB', 'im2col', 'col2im', 'copyRows', 'copyPlanes', 'zeroFill', 'maxPool',
  'wgGather_input', 'wgGather_outputGrad', 'wgScatter_output', 'wgScatter_inputGrad', 'wgFilter', 'wgFilterGrad',
  'phaseSplit', 'phaseMerge', 'wgPhaseFilter', 'wgPhaseFilterGrad',
  'wgGather_phaseInput', 'wgGather_phaseOutputGrad', 'wgScatter_phaseOutput', 'wgScatter_phaseInputGrad', 'lambDir', 'lambApply',
  'actGather', 'actScatter', 'actGatherOut', 'actScatterOut', 'packTaps', 'interleaveTaps', 'sgdMomentum',
  'wgGatherListed_input', 'wgGatherListed_outputGrad', 'wgScatterListed_output', 'wgScatterListed_inputGrad',
  'wgFilter43', 'wgFilterGrad43', 'wgFlipFilters', 'wgGather_input43', 'wgGather_outputGrad43', 'wgScatter_output43',
  ...BINARY_OPS.map((op) => `binary_${op}` as const), ...UNARY_OPS.map((op) => `unary_${op}` as const),
  'bnStats', 'bnNorm', 'bnBwdSums', 'bnBwdDx', 'bnStatsRows', 'bnNormRows', 'bnBwdSumsRows', 'bnBwdDxRows',
] as const;

/**
 * [start, end) ranges that cover [0, n) in at most `parts` pieces of about equal size, each start a multiple of
 * `align`; no piece is empty, and a piece is at least `minPiece` long (fewer pieces when n is small).
 */
export function splitRange(n: number, parts: number, align = 1, minPiece = 1): [number, number][] {
  const count = Math.max(1, Math.min(parts, Math.floor(n / Math.max(1, minPiece))));
  const width = Math.ceil(Math.ceil(n / count) / align) * align;
  const out: [number, number][] = [];
  for (let s = 0; s < n; s += width) out.push([s, Math.min(n, s + width)]);
  return out;
}

/** SPARKTS_THREADS, or every core this process may use; workers need SharedArrayBuffer. */
function threadsWanted(): number {
  const given = Number(env('SPARKTS_THREADS'));
  if (typeof SharedArrayBuffer === 'undefined') return 1;
  return Number.isInteger(given) && given >= 1 ? given : availableParallelism();
}

let defaultRuntime: WasmRuntime | null | undefined;
let unavailableReason = '';

/** The default runtime, created on first use; null where WebAssembly SIMD is unavailable or turned off. */
export function getRuntime(): WasmRuntime | null {
  if (defaultRuntime === undefined) {
    const off = env('SPARKTS_WASM');
    if (off === '0' || off === 'off') {
      defaultRuntime = null;
      unavailableReason = 'turned off by SPARKTS_WASM';
    } else {
      try {
        defaultRuntime = new WasmRuntime({ threads: threadsWanted() });
      } catch (e) {
        defaultRuntime = null;
        unavailableReason = e instanceof Error ? e.message : String(e);
      }
    }
  }
  return defaultRuntime;
}

/** Whether the WebAssembly SIMD kernels can run here. */
export function wasmAvailable(): boolean {
  return getRuntime() !== null;
}

/** 'wasm-relaxed-simd', 'wasm-simd128', or 'unavailable: <why>'. */
export function wasmDescription(): string {
  const rt = getRuntime();
  return rt ? rt.description : `unavailable: ${unavailableReason}`;
}

/** The default runtime, or an error naming why there is none (for callers that checked `wasmAvailable()`). */
export function requireRuntime(): WasmRuntime {
  const rt = getRuntime();
  if (!rt) throw new Error(`WebAssembly SIMD kernels ${wasmDescription()}`);
  return rt;
}
