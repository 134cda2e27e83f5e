/**
 * The gpu.js launcher: one GPU instance per backend, kernels compiled once per (name, sizes) and cached,
 * and GpuArray, the device copy of a tensor (a pipeline texture on the GL/WebGPU modes, a Float32Array on
 * gpu.js's WebAssembly and CPU modes) with its owners counted and the live textures counted per runtime.
 *
 * gpu.js traps this file guards against (each gives wrong answers silently otherwise):
 * - loop bounds must be constants (a bound read from an argument stops at 1000 iterations): every size a
 *   kernel loops over is passed in `constants`, so each distinct shape compiles its own kernel;
 * - `immutable: true`, or the next call overwrites the previous result's texture;
 * - flat indices are floats on GL: exact only below 2^24, so larger outputs and inputs are refused, and
 *   integer division goes through `idiv`, which corrects the rounding of a float quotient;
 * - textures are never garbage-collected: GpuArray.dispose() deletes them, and `liveTextures` counts them.
 * This file knows nothing of tensors or autograd.
 */
import type { GPU, IGPUFunctionSettings, IKernelRunShortcut, Texture } from 'gpu.js';

/** What a kernel may read: a device copy, or host floats that gpu.js uploads for the call. */
export type GpuIn = GpuArray | Float32Array;

/** The modes gpu.js offers; 'gpu' picks the best one present (headless GL, WebGL2, WebGL, then WebAssembly). */
export type GpuMode = 'gpu' | 'headlessgl' | 'webgl2' | 'webgl' | 'webgpu' | 'webasm' | 'cpu';

/** Indices at or above this are inexact as float32, the type of a GL thread index. */
export const MAX_FLAT = 2 ** 24;

type KernelSource = (...args: never[]) => number;

/** Up to this many axes in a strided view (after merging contiguous ones). */
export const MAX_DIMS = 6;

/**
 * A strided view as kernel constants: the grid (d0…d5, leading 1s padded) and per operand its strides
 * (prefix + 0…5). Throws past MAX_DIMS axes.
 */
export function viewConstants(kernel: string, shape: readonly number[], strides: Record<string, readonly number[]>): Record<string, number> {
  if (shape.length > MAX_DIMS) throw new Error(`gpu kernel ${kernel}: ${shape.length} axes after merging; at most ${MAX_DIMS} are supported`);
  const pad = MAX_DIMS - shape.length;
  const c: Record<string, number> = {};
  for (let k = 0; k < MAX_DIMS; k++) c[`d${k}`] = k < pad ? 1 : shape[k - pad];
  for (const [name, s] of Object.entries(strides)) {
    for (let k = 0; k < MAX_DIMS; k++) c[`${name}${k}`] = k < pad ? 0 : s[k - pad];
  }
  return c;
}

/** The `this` of a kernel function: its thread index and its compile-time constants. */
export interface KernelThis {
  thread: { x: number; y: number; z: number };
  constants: Record<string, number>;
}

/** The gpu.js Kernel class each concrete mode runs on. */
export const KERNEL_CLASS: Record<Exclude<GpuMode, 'gpu'>, string> = {
  headlessgl: 'HeadlessGLKernel', webgl2: 'WebGL2Kernel', webgl: 'WebGLKernel', webgpu: 'WebGPUKernel',
  webasm: 'WebAssemblyKernel', cpu: 'CPUKernel',
};

/**
 * Load gpu.js (dynamically: nothing GPU is loaded until asked for) and start `mode`. A probe kernel runs once,
 * so the runtime knows which Kernel class really runs; a mode gpu.js cannot start here is an error naming it.
 */
export async function createRuntime(mode: GpuMode = 'gpu'): Promise<GpuRuntime> {
  let mod: GpuJsModule & { default?: GpuJsModule };
  try {
    mod = await import('gpu.js') as typeof mod;
  } catch (e) {
    throw new Error(`the gpu backend needs the optional package gpu.js (npm install gpu.js): ${(e as Error).message}`);
  }
  return startRuntime(mod.GPU ? mod : mod.default!, mode);
}

/** What of the gpu.js module the runtime uses. */
export interface GpuJsModule { GPU: unknown }

/** createRuntime's synchronous part, given the loaded gpu.js module. */
export function startRuntime(gpujs: GpuJsModule, mode: GpuMode): GpuRuntime {
  const GPUClass = gpujs.GPU as new (settings: { mode: string }) => GPU;
  let gpu: GPU;
  try {
    gpu = new GPUClass({ mode });
  } catch (e) {
    throw new Error(`gpu.js cannot start mode '${mode}' here: ${(e as Error).message}`);
  }
  const rt = new GpuRuntime(gpu);
  let got: number[];
  try {
    const probe = rt.run('probe', function (this: KernelThis, x: number[]) { return x[this.thread.x] * 2 + 1; }, 4, {}, [new Float32Array([0, 1, 2, 3])]);
    got = Array.from(probe.read());
    probe.dispose();
  } catch (e) {
    rt.destroy();
    throw new Error(`gpu.js mode '${mode}' cannot run a kernel here: ${(e as Error).message}`);
  }
  if (got.join() !== '1,3,5,7') throw new Error(`gpu.js mode '${mode}' (${rt.kernelClass}) computes wrong results: probe gave ${got.join()}`);
  if (mode !== 'gpu' && rt.kernelClass !== KERNEL_CLASS[mode]) {
    throw new Error(`gpu.js mode '${mode}' ran on ${rt.kernelClass}, not ${KERNEL_CLASS[mode]}`);
  }
  return rt;
}

/**
 * gpu.js function settings: the name kernels call it by (bundlers may rename the function itself, e.g. esbuild
 * makes `idiv` `idiv2`), and every argument and the result a float (its type inference needs telling).
 */
function numberTypes(name: string, arity: number): IGPUFunctionSettings {
  return { name, argumentTypes: new Array<string>(arity).fill('Number'), returnType: 'Number' } as IGPUFunctionSettings;
}

export class GpuRuntime {
  readonly gpu: GPU;
  /** The gpu.js Kernel class the last kernel ran on (gpu.js falls back silently: tests assert this). */
  kernelClass = 'none';
  private readonly cache = new Map<string, IKernelRunShortcut>();
  private live = 0;

  constructor(gpu: GPU) {
    this.gpu = gpu;
    // ⌊a/b⌋ for integers a ≥ 0, b > 0 held in floats: the float quotient can land just below an integer,
    // so the remainder decides by one step either way
    gpu.addFunction(function idiv(a: number, b: number): number {
      let q = Math.floor((a + 0.5) / b);
      const r = a - q * b;
      if (r < 0) { q = q - 1; }
      if (r >= b) { q = q + 1; }
      return q;
    }, numberTypes('idiv', 2));
    // Σ_k coord_k·s_k for the flat index i of a row-major (d0, …, d5) grid: a strided view read at i.
    // (idiv inlined: gpu.js's WebAssembly mode cannot type a call from one added function to another)
    gpu.addFunction(function stridedOffset(i: number, d1: number, d2: number, d3: number, d4: number, d5: number,
      s0: number, s1: number, s2: number, s3: number, s4: number, s5: number): number {
      let r = i;
      let q = Math.floor((r + 0.5) / d5);
      if (r - q * d5 < 0) { q = q - 1; }
      if (r - q * d5 >= d5) { q = q + 1; }
      let off = (r - q * d5) * s5;
      r = q;
      q = Math.floor((r + 0.5) / d4);
      if (r - q * d4 < 0) { q = q - 1; }
      if (r - q * d4 >= d4) { q = q + 1; }
      off = off + (r - q * d4) * s4;
      r = q;
      q = Math.floor((r + 0.5) / d3);
      if (r - q * d3 < 0) { q = q - 1; }
      if (r - q * d3 >= d3) { q = q + 1; }
      off = off + (r - q * d3) * s3;
      r = q;
      q = Math.floor((r + 0.5) / d2);
      if (r - q * d2 < 0) { q = q - 1; }
      if (r - q * d2 >= d2) { q = q + 1; }
      off = off + (r - q * d2) * s2;
      r = q;
      q = Math.floor((r + 0.5) / d1);
      if (r - q * d1 < 0) { q = q - 1; }
      if (r - q * d1 >= d1) { q = q + 1; }
      off = off + (r - q * d1) * s1;
      return off + q * s0;
    }, numberTypes('stridedOffset', 12));
  }

  /** The mode gpu.js runs in (after 'gpu' has been resolved to a concrete one). */
  get mode(): string {
    const byClass = Object.entries(KERNEL_CLASS).find(([, cls]) => cls === this.kernelClass);
    return byClass ? byClass[0] : String(this.gpu.mode);
  }

  /** Textures alive now: created by kernels and not yet disposed. */
  liveTextures(): number {
    return this.live;
  }

  /**
   * Run the kernel `name` (compiled from `source` for these constants on first use) over a 1-D output of n
   * elements; the result is owned by the caller. Kernels index their inputs, so inputs must not be empty.
   */
  run(name: string, source: KernelSource, n: number, constants: Record<string, number>, args: readonly (GpuIn | number)[]): GpuArray {
    if (n < 1) return this.adopt(new Float32Array(0), 0); // nothing to compute (gpu.js cannot make an empty output)
    if (n >= MAX_FLAT) throw new Error(`gpu kernel ${name}: output of ${n} elements is beyond the 2^24 a float index addresses exactly`);
    // a compiled kernel is fixed to the lengths of its array arguments at its first call: they are part of the key
    const lengths = args.map((a) => (typeof a === 'number' ? 's' : a.length)).join(',');
    const key = `${name}|${n}|${lengths}|${JSON.stringify(constants)}`;
    let kernel = this.cache.get(key);
    if (!kernel) {
      kernel = this.gpu.createKernel(source as never, {
        output: [n], pipeline: true, immutable: true, precision: 'single', tactic: 'precision', constants, dynamicOutput: false,
      } as never) as IKernelRunShortcut;
      this.cache.set(key, kernel);
    }
    const inputs = args.map((a) => {
      if (typeof a === 'number') return a;
      if (a.length >= MAX_FLAT) throw new Error(`gpu kernel ${name}: input of ${a.length} elements is beyond the 2^24 a float index addresses exactly`);
      return a instanceof GpuArray ? a.value : a;
    });
    const out = (kernel as unknown as (...a: unknown[]) => Texture | Float32Array)(...inputs);
    this.kernelClass = (kernel as unknown as { kernel?: { constructor: { name: string } } }).kernel?.constructor.name ?? 'unknown';
    return this.adopt(out, n);
  }

  /** Wrap a kernel result (texture or array) as a GpuArray of n elements, counting textures. */
  adopt(value: Texture | Float32Array, n: number): GpuArray {
    if (!(value instanceof Float32Array)) this.live++;
    return new GpuArray(this, value, n);
  }

  /** Called by GpuArray when its last owner lets go. */
  release(value: Texture | Float32Array): void {
    if (value instanceof Float32Array) return;
    value.delete();
    this.live--;
  }

  destroy(): void {
    this.cache.clear();
    this.gpu.destroy();
  }
}

/**
 * A device copy of n float32 values. Views share it (`share()`), each owner disposes once, and the texture
 * is deleted with the last owner. Implements src/tensor's DeviceData.
 */
export class GpuArray {
  private owners = 1;

  constructor(private readonly rt: GpuRuntime, private readonly data: Texture | Float32Array, readonly length: number) {}

  /** The texture or array to hand to a kernel. */
  get value(): Texture | Float32Array {
    if (this.owners <= 0) throw new Error('GpuArray: used after its last owner disposed it');
    return this.data;
  }

  read(): Float32Array {
    const v = this.value;
    if (v instanceof Float32Array) return v.slice(0, this.length);
    const arr = v.toArray() as Float32Array;
    return arr instanceof Float32Array && arr.length === this.length ? arr : Float32Array.from(arr as ArrayLike<number>).subarray(0, this.length);
  }

  share(): GpuArray {
    if (this.owners <= 0) throw new Error('GpuArray: shared after its last owner disposed it');
    this.owners++;
    return this;
  }

  dispose(): void {
    if (this.owners <= 0) return;
    if (--this.owners === 0) this.rt.release(this.data);
  }
}
