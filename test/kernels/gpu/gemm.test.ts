/**
 * gpu.js batched gemm against kernels/cpu/gemm.ts's `gemmRef` (run batch by batch at offsets), per gpu.js mode
 * present: random sizes and all four storage layouts, a K past gpu.js's 1000-iteration limit on argument-bounded
 * loops, operands already on the device, and the empty cases. Tolerance: assertClose's float32 summation bound
 * over K terms.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { gemmRef } from '../../../kernels/cpu/gemm.ts';
import { gemm } from '../../../kernels/gpu/gemm.ts';
import { affine } from '../../../kernels/gpu/elementwise.ts';
import type { BatchedGemm } from '../../../src/backend/device.ts';
import type { GpuRuntime } from '../../../kernels/gpu/runtime.ts';
import { abs64, assertClose, forEachMode, randomF32, seeded } from './helpers.ts';

/** gemmRef per batch in doubles: c (batch·M·N). */
function reference(p: BatchedGemm, a: ArrayLike<number>, b: ArrayLike<number>): Float64Array {
  const { batch, M, N, K } = p;
  const c = new Float64Array(batch * M * N);
  const a64 = Float64Array.from(a), b64 = Float64Array.from(b);
  for (let i = 0; i < batch; i++) gemmRef({ ...p, accumulate: false }, a64, i * M * K, b64, i * K * N, c, i * M * N);
  return c;
}

function check(rt: GpuRuntime, p: BatchedGemm, seed: number, onDevice = false): void {
  const rand = seeded(seed);
  const a = randomF32(p.batch * p.M * p.K, rand), b = randomF32(p.batch * p.K * p.N, rand);
  const want = reference(p, a, b), magnitude = reference(p, abs64(a), abs64(b));
  // a device copy (a·1 + 0), read as a texture the way a model's activations are
  const da = onDevice ? affine(rt, a, a.length, 1, 0) : null;
  const got = gemm(rt, p, da ?? a, b);
  assertClose(`gemm ${JSON.stringify(p)}`, got.read(), want, magnitude, p.K);
  got.dispose();
  da?.dispose();
}

const gemmArb: fc.Arbitrary<BatchedGemm> = fc.record({
  batch: fc.integer({ min: 1, max: 3 }),
  M: fc.integer({ min: 1, max: 9 }), N: fc.integer({ min: 1, max: 9 }), K: fc.integer({ min: 1, max: 40 }),
  transA: fc.boolean(), transB: fc.boolean(),
});

forEachMode('gpu batched gemm equals gemmRef on random sizes and layouts', (rt) => {
  fc.assert(fc.property(gemmArb, fc.integer(), (p, seed) => check(rt, p, seed)), { numRuns: 12 });
});

forEachMode('gpu gemm: K past 1000, operands on the device, textures freed', (rt) => {
  const before = rt.liveTextures();
  check(rt, { batch: 2, M: 3, N: 2, K: 1500, transA: true, transB: false }, 1);
  check(rt, { batch: 2, M: 4, N: 5, K: 6, transA: false, transB: true }, 2, true);
  assert.is(rt.liveTextures(), before);
});

forEachMode('gpu gemm: empty sums are zero, empty products are empty', (rt) => {
  const z = gemm(rt, { batch: 2, M: 2, N: 3, K: 0, transA: false, transB: false }, new Float32Array(0), new Float32Array(0));
  assert.equal(Array.from(z.read()), [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  z.dispose();
  const e = gemm(rt, { batch: 2, M: 0, N: 3, K: 4, transA: false, transB: false }, new Float32Array(0), randomF32(24, seeded(3)));
  assert.is(e.read().length, 0);
  e.dispose();
});

test.run();
