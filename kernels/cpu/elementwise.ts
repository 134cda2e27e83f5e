/**
 * Elementwise kernels: unary maps, broadcasting binary ops, comparisons and the ternary `where`.
 * Each op is a tight loop selected once per row (see strided.ts), never a function call per element.
 * Derivative maps (`reluGrad`, `geluGrad`, …) live here too: they are plain functions of x that the op
 * layer multiplies with the incoming gradient.
 */
import type { DataArray, FloatArray } from '../../src/tensor/dtype.ts';
import { erf } from './erf.ts';
import { forEachRow } from './strided.ts';

export type UnaryOp =
  | 'neg' | 'exp' | 'log' | 'sqrt' | 'rsqrt' | 'abs' | 'sign' | 'relu' | 'relu6' | 'gelu' | 'sigmoid' | 'tanh'
  | 'erf' | 'reluGrad' | 'relu6Grad' | 'geluGrad';

const INV_SQRT2 = Math.SQRT1_2;
const INV_SQRT_2PI = 0.3989422804014327;

/** Φ(x), the standard normal CDF. */
function phi(x: number): number {
  return 0.5 * (1 + erf(x * INV_SQRT2));
}

export function unary(op: UnaryOp, x: FloatArray, out: FloatArray): void {
  const n = x.length;
  switch (op) {
    case 'neg': for (let i = 0; i < n; i++) out[i] = -x[i]; break;
    case 'exp': for (let i = 0; i < n; i++) out[i] = Math.exp(x[i]); break;
    case 'log': for (let i = 0; i < n; i++) out[i] = Math.log(x[i]); break;
    case 'sqrt': for (let i = 0; i < n; i++) out[i] = Math.sqrt(x[i]); break;
    case 'rsqrt': for (let i = 0; i < n; i++) out[i] = 1 / Math.sqrt(x[i]); break;
    case 'abs': for (let i = 0; i < n; i++) out[i] = Math.abs(x[i]); break;
    case 'sign': for (let i = 0; i < n; i++) out[i] = Math.sign(x[i]); break;
    // NaN passes through relu and relu6 as in PyTorch
    case 'relu': for (let i = 0; i < n; i++) { const v = x[i]; out[i] = v < 0 ? 0 : v; } break;
    case 'relu6': for (let i = 0; i < n; i++) { const v = x[i]; out[i] = v < 0 ? 0 : v > 6 ? 6 : v; } break;
    case 'gelu': for (let i = 0; i < n; i++) { const v = x[i]; out[i] = v * phi(v); } break;
    case 'sigmoid': for (let i = 0; i < n; i++) out[i] = sigmoid(x[i]); break;
    case 'tanh': for (let i = 0; i < n; i++) out[i] = Math.tanh(x[i]); break;
    case 'erf': for (let i = 0; i < n; i++) out[i] = erf(x[i]); break;
    // PyTorch: relu passes the gradient where x > 0; relu6 (hardtanh) where 0 < x < 6, open at both ends
    case 'reluGrad': for (let i = 0; i < n; i++) out[i] = x[i] > 0 ? 1 : 0; break;
    case 'relu6Grad': for (let i = 0; i < n; i++) { const v = x[i]; out[i] = v > 0 && v < 6 ? 1 : 0; } break;
    // d/dx x·Φ(x) = Φ(x) + x·φ(x), φ(x) = e^{−x²/2}/√(2π)
    case 'geluGrad':
      for (let i = 0; i < n; i++) { const v = x[i]; out[i] = phi(v) + v * INV_SQRT_2PI * Math.exp(-0.5 * v * v); }
      break;
  }
}

function sigmoid(v: number): number {
  // split by sign so that exp never overflows
  if (v >= 0) return 1 / (1 + Math.exp(-v));
  const e = Math.exp(v);
  return e / (1 + e);
}

export type ArithOp = 'add' | 'sub' | 'mul' | 'div' | 'pow' | 'maximum' | 'minimum';
export type CompareOp = 'eq' | 'ne' | 'lt' | 'le' | 'gt' | 'ge';
export type BinaryOp = ArithOp | CompareOp;

/**
 * out[i] = a[i] ∘ b[i] over `shape`, where a and b are read through broadcast strides and out is contiguous.
 * Comparisons write 0/1 (out may then be a Uint8Array).
 */
export function binary(
  op: BinaryOp, shape: readonly number[],
  a: FloatArray, aStrides: readonly number[], b: FloatArray, bStrides: readonly number[],
  out: Exclude<DataArray, BigInt64Array>, outStrides: readonly number[],
): void {
  forEachRow(shape, [aStrides, bStrides, outStrides], [0, 0, 0], (o, n, inner) => {
    const sa = inner[0], sb = inner[1], so = inner[2];
    let pa = o[0], pb = o[1], po = o[2];
    switch (op) {
      case 'add': for (let i = 0; i < n; i++, pa += sa, pb += sb, po += so) out[po] = a[pa] + b[pb]; break;
      case 'sub': for (let i = 0; i < n; i++, pa += sa, pb += sb, po += so) out[po] = a[pa] - b[pb]; break;
      case 'mul': for (let i = 0; i < n; i++, pa += sa, pb += sb, po += so) out[po] = a[pa] * b[pb]; break;
      case 'div': for (let i = 0; i < n; i++, pa += sa, pb += sb, po += so) out[po] = a[pa] / b[pb]; break;
      case 'pow': for (let i = 0; i < n; i++, pa += sa, pb += sb, po += so) out[po] = a[pa] ** b[pb]; break;
      // Math.max/min propagate NaN, as torch.maximum/minimum do
      case 'maximum': for (let i = 0; i < n; i++, pa += sa, pb += sb, po += so) out[po] = Math.max(a[pa], b[pb]); break;
      case 'minimum': for (let i = 0; i < n; i++, pa += sa, pb += sb, po += so) out[po] = Math.min(a[pa], b[pb]); break;
      case 'eq': for (let i = 0; i < n; i++, pa += sa, pb += sb, po += so) out[po] = a[pa] === b[pb] ? 1 : 0; break;
      case 'ne': for (let i = 0; i < n; i++, pa += sa, pb += sb, po += so) out[po] = a[pa] !== b[pb] ? 1 : 0; break;
      case 'lt': for (let i = 0; i < n; i++, pa += sa, pb += sb, po += so) out[po] = a[pa] < b[pb] ? 1 : 0; break;
      case 'le': for (let i = 0; i < n; i++, pa += sa, pb += sb, po += so) out[po] = a[pa] <= b[pb] ? 1 : 0; break;
      case 'gt': for (let i = 0; i < n; i++, pa += sa, pb += sb, po += so) out[po] = a[pa] > b[pb] ? 1 : 0; break;
      case 'ge': for (let i = 0; i < n; i++, pa += sa, pb += sb, po += so) out[po] = a[pa] >= b[pb] ? 1 : 0; break;
    }
  });
}

/** out = cond ? a : b, all three read through broadcast strides; cond is nonzero for true. */
export function where(
  shape: readonly number[],
  cond: Exclude<DataArray, BigInt64Array>, cStrides: readonly number[],
  a: FloatArray, aStrides: readonly number[], b: FloatArray, bStrides: readonly number[],
  out: FloatArray, outStrides: readonly number[],
): void {
  forEachRow(shape, [cStrides, aStrides, bStrides, outStrides], [0, 0, 0, 0], (o, n, inner) => {
    // the steps as locals: read from the array inside the loop they cost V8 a load each (6.5 → 4.7 ns per element)
    const sc = inner[0], sa = inner[1], sb = inner[2], so = inner[3];
    let pc = o[0], pa = o[1], pb = o[2], po = o[3];
    for (let i = 0; i < n; i++, pc += sc, pa += sa, pb += sb, po += so) {
      out[po] = cond[pc] !== 0 ? a[pa] : b[pb];
    }
  });
}
