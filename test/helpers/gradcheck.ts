/**
 * Gradient checking by central differences in float64, and fast-check arbitraries for shapes and data.
 * gradcheck(f, inputs) compares the gradient of L = Σ f(x)·gOut from backward() against
 * (L(x + h·e_j) − L(x − h·e_j)) / 2h for every element j of every input that requires grad.
 */
import fc from 'fast-check';
import { Tensor, tensor, noGrad } from '../../src/index.ts';

export const H = 1e-6;

export interface GradcheckOptions { atol?: number; rtol?: number; h?: number }

/** Deterministic pseudo-random float64 data from a fast-check seed (fast-check shrinks the seed, not the values). */
export function seededData(seed: number, n: number, lo = -2, hi = 2): Float64Array {
  let s = seed >>> 0 || 1;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    s ^= s << 13; s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5; s >>>= 0;
    out[i] = lo + ((s >>> 0) / 4294967296) * (hi - lo);
  }
  return out;
}

export function leaf(shape: readonly number[], seed: number, lo = -2, hi = 2): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return tensor(seededData(seed, n, lo, hi), shape, { dtype: 'float64', requiresGrad: true });
}

/** Distinct values spaced ≥ 0.05 apart, shuffled: for max/pool checks, so no two entries tie within h. */
export function distinctLeaf(shape: readonly number[], seed: number): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const keys = seededData(seed, n, 0, 1);
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => keys[a] - keys[b]);
  const data = new Float64Array(n);
  order.forEach((pos, rank) => { data[pos] = (rank - n / 2) * 0.05; });
  return tensor(data, shape, { dtype: 'float64', requiresGrad: true });
}

/** Returns the worst |analytic − numeric| / (atol + rtol·|numeric|); throws with details when it exceeds 1. */
export function gradcheck(f: (...xs: Tensor[]) => Tensor, inputs: Tensor[], options: GradcheckOptions = {}): number {
  const { atol = 1e-6, rtol = 1e-5, h = H } = options;
  for (const x of inputs) x.grad = null;
  const out = f(...inputs);
  const gOut = tensor(seededData(out.size * 7 + 3, out.size, -1, 1), out.shape, { dtype: 'float64' });
  const loss = (): number => noGrad(() => {
    const y = f(...inputs).data as Float64Array;
    let s = 0;
    for (let i = 0; i < y.length; i++) s += y[i] * (gOut.data as Float64Array)[i];
    return s;
  });
  out.backward(gOut);
  let worst = 0;
  inputs.forEach((x, k) => {
    if (!x.requiresGrad) return;
    const data = x.data as Float64Array;
    const analytic = x.grad ? (x.grad.data as Float64Array) : new Float64Array(x.size);
    for (let j = 0; j < data.length; j++) {
      const orig = data[j];
      data[j] = orig + h;
      const up = loss();
      data[j] = orig - h;
      const down = loss();
      data[j] = orig;
      const numeric = (up - down) / (2 * h);
      const err = Math.abs(analytic[j] - numeric) / (atol + rtol * Math.abs(numeric));
      if (err > 1) {
        throw new Error(`gradcheck: input ${k} element ${j}: analytic ${analytic[j]} vs numeric ${numeric} (shape [${x.shape}])`);
      }
      worst = Math.max(worst, err);
    }
  });
  return worst;
}

// ---- arbitraries

export const seed = fc.integer({ min: 1, max: 0x7fffffff });

/** A shape of 0..maxDims dims with sizes 1..maxSize. */
export const shapeArb = (minDims = 0, maxDims = 3, maxSize = 4) =>
  fc.array(fc.integer({ min: 1, max: maxSize }), { minLength: minDims, maxLength: maxDims });

/** Two shapes that broadcast together: drop leading dims and/or set dims to 1 in either. */
export const broadcastPairArb = fc
  .tuple(shapeArb(0, 4, 3), fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 4, maxLength: 4 }), fc.nat(3), fc.nat(3))
  .map(([base, how, dropA, dropB]) => {
    const a = base.map((d, i) => (how[i] === 1 ? 1 : d)).slice(Math.min(dropA, base.length));
    const b = base.map((d, i) => (how[i] === 2 ? 1 : d)).slice(Math.min(dropB, base.length));
    return [a, b] as const;
  });

export const RUNS = { numRuns: 40 };
