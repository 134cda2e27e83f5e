/**
 * LAMB's per-parameter update on the WebAssembly kernels (lamb_module.ts), split over the threads: the same
 * contract as `lambUpdate` in kernels/cpu/lamb.ts (its twin), for float32 parameters. w, g, m and v are used in
 * place where resident (WasmRuntime.residentFloat32), else copied into wasm memory and back; the direction pass
 * updates m, v (and g when clipping) and leaves u there, the caller's trust-ratio rule runs on the summed
 * norms, and the apply pass updates w. Float64 parameters (the gradient checks) take the reference. Every stored
 * value equals the reference's bit for bit; ‖w‖² and ‖u‖² are summed in another order, so the trust ratio (and
 * through it w) can differ in the last bit.
 */
import type { FloatArray } from '../../src/tensor/dtype.ts';
import { lambUpdate, type LambConstants } from '../cpu/lamb.ts';
import { getRuntime, splitRange } from './runtime.ts';

/** Elements per thread below which a parameter stays on the calling thread (BN vectors, biases). */
const PARALLEL_MIN = 1 << 16;

export function lambUpdateWasm(
  w: FloatArray, g: FloatArray, m: FloatArray, v: FloatArray, u: FloatArray, c: LambConstants,
  trustRatio: (wNorm2: number, uNorm2: number) => number, r: (x: number) => number = Math.fround,
): void {
  const rt = getRuntime();
  const f32 = [w, g, m, v].every((a) => a instanceof Float32Array);
  if (!rt || !f32 || r !== Math.fround) return lambUpdate(w, g, m, v, u, c, trustRatio, r);
  const n = w.length, n2 = n + (n % 2); // the kernels take pairs; a padding element of zeros adds nothing
  const mark = rt.mark();
  // resident arrays (an even count, no padding element needed) are updated in place; the others are copied in
  // (and back out where the kernels update them)
  const copied = new Set<Float32Array>();
  const [wP, gP, mP, vP] = ([w, g, m, v] as Float32Array[]).map((a) => {
    const at = n2 === n ? rt.addressOf(a) : -1;
    if (at >= 0) return at;
    copied.add(a);
    const ptr = rt.alloc(n2);
    rt.write(ptr, a);
    if (n2 > n) rt.f32[(ptr >>> 2) + n] = 0;
    return ptr;
  });
  const uP = rt.alloc(n2);
  const prm = rt.alloc(2 * 9), norms = rt.alloc(2 * 2 * rt.threads);
  const f64 = new Float64Array(rt.memory.buffer);
  f64.set([c.clip, c.beta1, c.beta2, c.beta3, 1 - c.beta2, c.bc1, c.bc2Sqrt, c.eps, c.wd], prm >>> 3);
  const flags = (c.clip !== 1 ? 1 : 0) | (c.wd !== 0 ? 2 : 0);
  const shares = splitRange(n2, rt.threads, 2, PARALLEL_MIN);
  rt.runShares('lambDir', shares.map(([a, b], t) =>
    [wP + 4 * a, gP + 4 * a, mP + 4 * a, vP + 4 * a, uP + 4 * a, b - a, prm, flags, norms + 16 * t]));
  let wNorm2 = 0, uNorm2 = 0;
  shares.forEach((_, t) => { wNorm2 += f64[(norms >>> 3) + 2 * t]; uNorm2 += f64[(norms >>> 3) + 2 * t + 1]; });
  if (c.clip !== 1 && copied.has(g as Float32Array)) rt.read(gP, n, g as Float32Array);
  if (copied.has(m as Float32Array)) rt.read(mP, n, m as Float32Array);
  if (copied.has(v as Float32Array)) rt.read(vP, n, v as Float32Array);
  f64.set([c.lr, trustRatio(wNorm2, uNorm2)], prm >>> 3);
  rt.runShares('lambApply', shares.map(([a, b]) => [wP + 4 * a, uP + 4 * a, b - a, prm]));
  if (copied.has(w as Float32Array)) rt.read(wP, n, w as Float32Array);
  rt.reset(mark);
}
