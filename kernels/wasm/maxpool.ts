/**
 * Max pool on the WebAssembly kernel (maxpool_module.ts), the planes split over the threads: the same contract as
 * kernels/cpu/pool.ts's maxPool2d (its twin), for float32 arrays; float64 goes to the reference. Measured on 2
 * threads, JS → wasm: the ResNet stem's pool (16×64×32² → 16², 3×3 s2 p1) 10.6 → 4.9 ms, SparK's at 96² input
 * (16×64×48² → 24²) 23.5 → 10.9 ms. One thread alone runs the kernel no faster than the JS loop (8.9 ms for the
 * first), so the gain is the second thread.
 */
import type { FloatArray } from '../../src/tensor/dtype.ts';
import { dilatedWindows, maxPool2d, type Pool2dParams } from '../cpu/pool.ts';
import { getRuntime } from './runtime.ts';

/** Outputs below which the planes stay on the calling thread. */
const PARALLEL_MIN = 1 << 16;

export function maxPool2dWasm(x: FloatArray, y: FloatArray, argmax: Int32Array, p: Pool2dParams): void {
  const rt = getRuntime();
  if (!rt || !(x instanceof Float32Array) || !(y instanceof Float32Array)) return maxPool2d(x, y, argmax, p);
  const { N, C, H, W, OH, OW } = p;
  const planes = N * C, n = planes * H * W, m = planes * OH * OW;
  if (m === 0) return;
  const mark = rt.mark();
  const xPtr = rt.alloc(n), yPtr = rt.alloc(m), aPtr = rt.alloc(m), rows = rt.alloc(2 * OH), cols = rt.alloc(2 * OW);
  rt.write(xPtr, x);
  rt.i32.set(dilatedWindows(OH, p.strideH, p.padH, p.kH, p.dilationH, H), rows >>> 2);
  rt.i32.set(dilatedWindows(OW, p.strideW, p.padW, p.kW, p.dilationW, W), cols >>> 2);
  const args = (a: number, b: number) => [xPtr, yPtr, aPtr, rows, cols, H, W, OH, OW, p.dilationH, p.dilationW, a, b];
  if (m < PARALLEL_MIN) rt.kernels.maxPool(...(args(0, planes) as Parameters<typeof rt.kernels.maxPool>));
  else rt.runPieces(planes, (a, b) => [['maxPool', args(a, b)]]);
  rt.read(yPtr, m, y);
  argmax.set(rt.i32.subarray(aPtr >>> 2, (aPtr >>> 2) + m));
  rt.reset(mark);
}
