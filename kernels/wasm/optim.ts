/**
 * SGD's momentum update on the WebAssembly kernels (lamb_module.ts's sgdMomentum), split over the threads, for
 * the plain float32 case (no weight decay, not Nesterov, after the first step) when the parameter, its gradient
 * and its momentum buffer are all resident (WasmRuntime.residentFloat32): then nothing is copied. Same contract
 * and the same values, bit for bit, as `sgdMomentumUpdate` in kernels/cpu/optim_updates.ts, which takes every
 * other case. ResNet-18's 11.7M parameters: 25–35 ms per update as the JS loop.
 */
import type { FloatArray } from '../../src/tensor/dtype.ts';
import { isPlainSgd32, sgdMomentumUpdate, type SgdConstants } from '../cpu/optim_updates.ts';
import { getRuntime, splitRange } from './runtime.ts';

/** Elements per thread below which a parameter stays on the calling thread (BN vectors, biases). */
const PARALLEL_MIN = 1 << 16;

export function sgdMomentumUpdateWasm(w: FloatArray, g: FloatArray, buf: FloatArray, c: SgdConstants, r: (x: number) => number): void {
  const rt = getRuntime();
  if (!rt || r !== Math.fround || !isPlainSgd32(w, g, buf, c)) return sgdMomentumUpdate(w, g, buf, c, r);
  const [wP, gP, bP] = [w, g, buf].map((a) => rt.addressOf(a as Float32Array));
  if (wP < 0 || gP < 0 || bP < 0) return sgdMomentumUpdate(w, g, buf, c, r);
  const mark = rt.mark();
  const prm = rt.alloc(2 * 3);
  new Float64Array(rt.memory.buffer, prm, 3).set([c.lr, c.mu, 1 - c.dampening]);
  // pieces start at even elements, so each one's pairs stay pairs
  rt.runShares('sgdMomentum', splitRange(w.length, rt.threads, 2, PARALLEL_MIN).map(([a, b]) =>
    [wP + 4 * a, gP + 4 * a, bP + 4 * a, b - a, prm]));
  rt.reset(mark);
}
