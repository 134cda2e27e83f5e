/**
 * Batched matrix product on gpu.js: C_b (M×N) = op(A_b) · op(B_b) for b < batch, one thread per element of C,
 * each looping over K (a constant). Storage as in kernels/cpu/gemm.ts: A_b is M×K, or K×M when transA; B_b is
 * K×N, or N×K when transB; batches follow each other contiguously. Reference twin: `gemmRef` run per batch.
 * Left out: accumulation into an existing C, alpha/beta, shared-memory tiling (gpu.js exposes none).
 */
import type { BatchedGemm } from '../../src/backend/device.ts';
import { fill } from './elementwise.ts';
import type { GpuArray, GpuIn, GpuRuntime, KernelThis } from './runtime.ts';

/**
 * C[b, i, j] = Σ_k A[b·M·K + i·aRow + k·aK] · B[b·K·N + k·bK + j·bCol], where (aRow, aK) = (K, 1), or (1, M)
 * when transA, and (bK, bCol) = (N, 1), or (1, K) when transB: the layouts become strides, so one kernel
 * serves all four cases without branching in the loop.
 */
const gemmKernel = function (this: KernelThis, a: number[], b: number[]): number {
  const bat = idiv(this.thread.x, this.constants.MN);
  const ij = this.thread.x - bat * this.constants.MN;
  const i = idiv(ij, this.constants.N);
  const j = ij - i * this.constants.N;
  const aBase = bat * this.constants.MK + i * this.constants.aRow;
  const bBase = bat * this.constants.KN + j * this.constants.bCol;
  let sum = 0;
  for (let k = 0; k < this.constants.K; k++) {
    sum += a[aBase + k * this.constants.aK] * b[bBase + k * this.constants.bK];
  }
  return sum;
};

/** (batch, M, N) = op(a) · op(b) per batch; a and b hold batch·M·K and batch·K·N values. */
export function gemm(rt: GpuRuntime, p: BatchedGemm, a: GpuIn, b: GpuIn): GpuArray {
  const { batch, M, N, K, transA, transB } = p;
  const n = batch * M * N;
  if (n === 0) return rt.adopt(new Float32Array(0), 0);
  // an empty sum: gpu.js cannot take zero-length inputs
  if (K === 0) return fill(rt, n, 0);
  if (a.length < batch * M * K || b.length < batch * K * N) {
    throw new Error(`gpu gemm: operands of ${a.length} and ${b.length} values for ${batch}×(${M}×${K})·(${K}×${N})`);
  }
  return rt.run('gemm', gemmKernel, n, {
    MN: M * N, MK: M * K, KN: K * N, N, K,
    aRow: transA ? 1 : K, aK: transA ? M : 1,
    bK: transB ? 1 : N, bCol: transB ? K : 1,
  }, [a, b]);
}
