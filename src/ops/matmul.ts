/**
 * Matrix products. One recorded op, `bmm`, multiplies equal-sized batches with either factor optionally
 * transposed in storage (so backward and linear never copy a transpose). `matmul` adds torch.matmul's
 * rules on top: 1-D operands, and batch dims that broadcast.
 */
import type { Tensor } from '../tensor/tensor.ts';
import type { FloatDType } from '../tensor/dtype.ts';
import { broadcastShapes, shapeStr } from '../tensor/shape.ts';
import { defineOp } from '../autograd/define.ts';
import { backend } from '../backend/registry.ts';
import { devIn, deviceFor, emptyFloat, floatData, fromDevice, requireFloat } from './util.ts';
import { cast } from './elementwise.ts';
import { expand, reshape } from './movement.ts';
import { promoteFloat } from '../tensor/dtype.ts';

interface BmmAttrs { transA: boolean; transB: boolean }

/** a: (B, M, K) or (B, K, M) if transA; b: (B, K, N) or (B, N, K) if transB → (B, M, N). */
const bmmOp = defineOp<[Tensor, Tensor], BmmAttrs>('bmm', {
  forward: ([a, b], { transA, transB }) => {
    const [batch, ra, ca] = a.shape;
    const [, rb, cb] = b.shape;
    const M = transA ? ca : ra, K = transA ? ra : ca, N = transB ? rb : cb;
    const device = deviceFor(a, b);
    if (device) return fromDevice(device.gemm({ batch, M, N, K, transA, transB }, devIn(a), devIn(b)), [batch, M, N]);
    const { t, data } = emptyFloat([batch, M, N], a.dtype as FloatDType, true);
    const p = { M, N, K, transA, transB, accumulate: false };
    for (let i = 0; i < batch; i++) backend().gemm(p, floatData(a), i * M * K, floatData(b), i * K * N, data, i * M * N);
    return t;
  },
  // C = op(A)·op(B):  dA = G·op(B)ᵀ stored as op(A)'s layout, dB = op(A)ᵀ·G likewise (four cases of transposes)
  backward: (g, { inputs: [a, b], attrs: { transA, transB } }) => {
    const da = !a.requiresGrad ? null
      : transA ? bmm(b, g, transB, true) : bmm(g, b, false, !transB);
    const db = !b.requiresGrad ? null
      : transB ? bmm(g, a, true, transA) : bmm(a, g, !transA, false);
    return [da, db];
  },
});

export function bmm(a: Tensor, b: Tensor, transA = false, transB = false): Tensor {
  return bmmOp([a, b], { transA, transB });
}

/** torch.matmul: 1-D operands are promoted and squeezed back; batch dims broadcast. */
export function matmul(a: Tensor, b: Tensor): Tensor {
  requireFloat('matmul', 'a', a);
  requireFloat('matmul', 'b', b);
  if (a.ndim === 0 || b.ndim === 0) throw new Error(`matmul: both operands need at least 1 dim, got ${shapeStr(a.shape)} and ${shapeStr(b.shape)}`);
  const dt = promoteFloat(a.dtype, b.dtype);
  if (a.dtype !== dt) a = cast(a, dt);
  if (b.dtype !== dt) b = cast(b, dt);
  const a2 = a.ndim === 1 ? reshape(a, [1, a.shape[0]]) : a;
  const b2 = b.ndim === 1 ? reshape(b, [b.shape[0], 1]) : b;
  const [M, K] = a2.shape.slice(-2);
  const [K2, N] = b2.shape.slice(-2);
  if (K !== K2) throw new Error(`matmul: inner dims differ: a ${shapeStr(a.shape)} and b ${shapeStr(b.shape)} (${K} vs ${K2})`);
  const batch = broadcastShapes('matmul', a2.shape.slice(0, -2), b2.shape.slice(0, -2));
  const nb = batch.reduce((x, y) => x * y, 1);
  const a3 = reshape(expand(a2, [...batch, M, K]), [nb, M, K]);
  const b3 = reshape(expand(b2, [...batch, K, N]), [nb, K, N]);
  const shape = [...batch, M, N];
  if (a.ndim === 1) shape.splice(shape.length - 2, 1);
  if (b.ndim === 1) shape.splice(shape.length - 1, 1);
  return reshape(bmm(a3, b3), shape);
}
