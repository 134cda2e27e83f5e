/**
 * Run by gemm.test.ts in a child `node --experimental-wasm-relaxed-simd`, where Node 20 validates relaxed SIMD:
 * the relaxed (fused multiply-add) gemm against gemmRef on a few shapes. Prints one JSON line:
 * { relaxed: false } when even the flag gives no relaxed SIMD, else { relaxed: true, failures: [...] }.
 */
import { gemmRef } from '../../../kernels/cpu/gemm.ts';
import { gemmPtr } from '../../../kernels/wasm/gemm.ts';
import { WasmRuntime, detectRelaxedSimd } from '../../../kernels/wasm/runtime.ts';
import { abs64, randomF32, seeded, U32 } from './helpers.ts';

if (!detectRelaxedSimd()) {
  console.log(JSON.stringify({ relaxed: false }));
} else {
  const rt = new WasmRuntime({ relaxed: true, initialPages: 1 });
  const failures: string[] = [];
  let seed = 7;
  for (const [M, N, K] of [[1, 1, 1], [5, 17, 9], [37, 70, 300], [130, 33, 513]]) {
    for (const transA of [false, true]) {
      for (const transB of [false, true]) {
        for (const accumulate of [false, true]) {
          const p = { M, N, K, transA, transB, accumulate };
          const rand = seeded(seed++);
          const a = randomF32(M * K, rand), b = randomF32(K * N, rand), c0 = randomF32(M * N, rand);
          const mark = rt.mark();
          const ap = rt.alloc(M * K), bp = rt.alloc(K * N), cp = rt.alloc(M * N);
          rt.write(ap, a); rt.write(bp, b); rt.write(cp, c0);
          gemmPtr(p, ap, bp, cp, rt);
          const got = rt.f32.slice(cp >>> 2, (cp >>> 2) + M * N);
          rt.reset(mark);
          const want = Float64Array.from(c0), mag = abs64(c0);
          gemmRef(p, a, 0, b, 0, want, 0);
          gemmRef(p, abs64(a), 0, abs64(b), 0, mag, 0);
          for (let i = 0; i < want.length; i++) {
            if (!(Math.abs(got[i] - want[i]) <= 2 * (K + 2) * U32 * mag[i])) {
              failures.push(`${JSON.stringify(p)} [${i}] ${got[i]} vs ${want[i]}`);
              break;
            }
          }
        }
      }
    }
  }
  console.log(JSON.stringify({ relaxed: true, description: rt.description, failures }));
}
