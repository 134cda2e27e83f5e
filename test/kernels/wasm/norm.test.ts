/**
 * The wasm batch-norm channel passes against kernels/cpu/norm.ts on random (outer, C, inner) shapes, inner from 0
 * up with every remainder mod 4, inputs far from zero mean (offsets to ±1000) and of any scale, with and without
 * γ/β, batch and running statistics, and each backward output present or absent; on one thread and split over
 * the default runtime's threads.
 *
 * Both sides compute in float64; the wasm sums go in another order (f64x2 lanes, several accumulators). So:
 *   statistics   |Δμ| ≤ 1e-14·max|x| and |Δσ²| ≤ 1e-12·σ² + 1e-15·max|x|²  (measured over these runs: Δμ = 0,
 *                since float64 sums of these many float32 values are exact in any order, and |Δσ²|/σ² ≤ 1e-14;
 *                the test prints the maxima it saw)
 *   normalise    y is the reference's bit for bit (same coefficients, same float64 expression, one rounding)
 *   backward     dγ, dβ and dx are float32 roundings of float64 values that differ by ~1e-16 relative, so they
 *                may differ by one float32 rounding: |Δ| ≤ 2⁻²³·(sum of the magnitudes of the terms)
 * With inner = 1 ((rows, C), the sparse batch norm's layout) the kernels add each channel's terms in the
 * reference's order, so there everything must be the reference's bit for bit.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import {
  channelNormalize, channelNormalizeBackward, channelStats, type ChannelShape,
} from '../../../kernels/cpu/norm.ts';
import { channelNormalizeBackwardWasm, channelNormalizeWasm, channelStatsWasm } from '../../../kernels/wasm/norm.ts';
import type { PointwiseOptions } from '../../../kernels/wasm/elementwise.ts';
import { requireRuntime } from '../../../kernels/wasm/runtime.ts';
import { seeded, wasmOrSkip } from './helpers.ts';

const paths: [string, () => PointwiseOptions][] = [
  ['1 thread', () => ({ runtime: requireRuntime(), minElements: 0, minParallel: Infinity })],
  ['threads', () => ({ runtime: requireRuntime(), minElements: 0, minParallel: 0 })],
];

const caseArb = fc.record({
  outer: fc.integer({ min: 1, max: 4 }),
  C: fc.oneof(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 6, max: 19 })),
  inner: fc.oneof(fc.constant(1), fc.integer({ min: 0, max: 9 }), fc.integer({ min: 10, max: 130 })),
  offset: fc.constantFrom(0, 0.5, -3, 100, -1000),
  scale: fc.constantFrom(1e-3, 1, 7, 1e3),
  affine: fc.boolean(),
  batchStats: fc.boolean(),
  want: fc.record({ dx: fc.boolean(), dGamma: fc.boolean(), dBeta: fc.boolean() }),
  seed: fc.nat(),
});

/** Worst errors seen, reported at the end. */
const seen = { mean: 0, variance: 0 };

function randomArray(n: number, rand: () => number, offset = 0, scale = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = offset + scale * (rand() * 2 - 1);
  return out;
}

function maxAbs(x: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i]));
  return m;
}

/** got and want agree to one float32 rounding of values whose terms have magnitude mag. */
function assertOneRounding(what: string, got: ArrayLike<number>, want: ArrayLike<number>, mag: (i: number) => number): void {
  for (let i = 0; i < want.length; i++) {
    const tol = 2 ** -23 * mag(i) + 1e-300;
    if (!(Math.abs(got[i] - want[i]) <= tol)) assert.unreachable(`${what} [${i}]: wasm ${got[i]} reference ${want[i]} (tolerance ${tol})`);
  }
}

type Case = Omit<typeof caseArb extends fc.Arbitrary<infer T> ? T : never, 'offset' | 'scale'> & { offset: number; scale: number };

/** Bit-for-bit equality (NaN equals NaN). */
function assertSame(what: string, got: ArrayLike<number>, want: ArrayLike<number>): void {
  for (let i = 0; i < want.length; i++) {
    if (!Object.is(got[i], want[i]) && !(Number.isNaN(got[i]) && Number.isNaN(want[i]))) {
      assert.unreachable(`${what} [${i}]: wasm ${got[i]} reference ${want[i]}`);
    }
  }
}

function check(c: Case): void {
  const { outer, C, inner, offset, scale, affine, batchStats, want, seed } = c;
  const s: ChannelShape = { outer, C, inner };
  const n = outer * C * inner, M = outer * inner;
  const rand = seeded(seed);
  const x = randomArray(n, rand, offset, scale), g = randomArray(n, rand);
  const gamma = affine ? randomArray(C, rand) : null, beta = affine ? randomArray(C, rand) : null;
  const xMax = maxAbs(x);
  const label = JSON.stringify({ outer, C, inner, offset, scale, affine, batchStats });

  const mean = new Float64Array(C), varB = new Float64Array(C);
  channelStats(x, s, mean, varB);
  const invStd = varB.map((v) => 1 / Math.sqrt(v + 1e-5));
  for (const [path, opts] of paths) {
    const what = `${label} ${path}`;
    const m = new Float64Array(C).fill(NaN), v = new Float64Array(C).fill(NaN);
    channelStatsWasm(x, s, m, v, opts());
    for (let k = 0; k < C; k++) {
      // with inner = 0 both sides divide 0 by 0
      if (M === 0) { assert.ok(Number.isNaN(m[k]) && Number.isNaN(v[k]), `${what}: stats of an empty channel`); continue; }
      const dm = Math.abs(m[k] - mean[k]), dv = Math.abs(v[k] - varB[k]);
      seen.mean = Math.max(seen.mean, dm / xMax);
      if (varB[k] > 0) seen.variance = Math.max(seen.variance, dv / varB[k]);
      assert.ok(dm <= 1e-14 * xMax, `${what}: mean[${k}] wasm ${m[k]} reference ${mean[k]}`);
      assert.ok(dv <= 1e-12 * varB[k] + 1e-15 * xMax * xMax, `${what}: var[${k}] wasm ${v[k]} reference ${varB[k]}`);
    }

    if (inner === 1) {
      assertSame(`${what}: mean`, m, mean);
      assertSame(`${what}: var`, v, varB);
    }

    const y = new Float32Array(n), yWant = new Float32Array(n).fill(NaN);
    channelNormalize(x, s, mean, invStd, gamma, beta, yWant);
    y.fill(NaN);
    channelNormalizeWasm(x, s, mean, invStd, gamma, beta, y, opts());
    for (let i = 0; i < n; i++) if (!Object.is(y[i], yWant[i])) assert.unreachable(`${what}: y[${i}] wasm ${y[i]} reference ${yWant[i]}`);

    const dxW = new Float32Array(n), dgW = new Float32Array(C), dbW = new Float32Array(C);
    channelNormalizeBackward(g, x, s, mean, invStd, gamma, batchStats, dxW, dgW, dbW);
    const dx = want.dx ? new Float32Array(n).fill(NaN) : null;
    const dg = want.dGamma ? new Float32Array(C).fill(NaN) : null, db = want.dBeta ? new Float32Array(C).fill(NaN) : null;
    channelNormalizeBackwardWasm(g, x, s, mean, invStd, gamma, batchStats, dx, dg, db, opts());
    // magnitudes of the terms per channel: Σ|g|, Σ|g·x̂|
    const sumAbsG = new Float64Array(C), sumAbsGX = new Float64Array(C);
    for (let o = 0; o < outer; o++) {
      for (let k = 0; k < C; k++) {
        for (let i = 0; i < inner; i++) {
          const j = (o * C + k) * inner + i;
          sumAbsG[k] += Math.abs(g[j]);
          sumAbsGX[k] += Math.abs(g[j] * (x[j] - mean[k]) * invStd[k]);
        }
      }
    }
    if (inner === 1) {
      if (db) assertSame(`${what}: dBeta`, db, dbW);
      if (dg) assertSame(`${what}: dGamma`, dg, dgW);
      if (dx) assertSame(`${what}: dx`, dx, dxW);
    }
    if (db) assertOneRounding(`${what}: dBeta`, db, dbW, (k) => 2 * sumAbsG[k]);
    if (dg) assertOneRounding(`${what}: dGamma`, dg, dgW, (k) => 2 * sumAbsGX[k]);
    if (dx) {
      assertOneRounding(`${what}: dx`, dx, dxW, (j) => {
        const k = Math.floor(j / inner) % C, kk = Math.abs((gamma ? gamma[k] : 1) * invStd[k]);
        const xh = Math.abs((x[j] - mean[k]) * invStd[k]);
        return 2 * kk * (Math.abs(g[j]) + (batchStats ? (sumAbsG[k] + xh * sumAbsGX[k]) / M : 0));
      });
    }
  }
}

test('wasm batch-norm passes == reference on random shapes and offsets', () => {
  if (!wasmOrSkip('wasm batch norm')) return;
  fc.assert(fc.property(caseArb, check), { numRuns: 250 });
  console.log(`  batch-norm statistics, worst seen: |Δμ|/max|x| = ${seen.mean.toExponential(1)}, |Δσ²|/σ² = ${seen.variance.toExponential(1)}`);
});

test('wasm batch-norm passes on (rows, C) layouts (inner = 1): many rows, channel counts off multiples of 4', () => {
  if (!wasmOrSkip('wasm batch norm rows')) return;
  const arb = fc.record({
    outer: fc.integer({ min: 1, max: 60 }), C: fc.integer({ min: 1, max: 150 }), seed: fc.nat(), affine: fc.boolean(), batchStats: fc.boolean(),
    offset: fc.constantFrom(0, 40), scale: fc.constantFrom(1, 1e-2),
  });
  fc.assert(fc.property(arb, (c) => check({ ...c, inner: 1, want: { dx: true, dGamma: true, dBeta: true } })), { numRuns: 60 });
});

test('wasm batch-norm passes at a SparK size (16×64×12×12) with a large offset', () => {
  if (!wasmOrSkip('wasm batch norm large')) return;
  for (const batchStats of [true, false]) {
    check({ outer: 16, C: 64, inner: 144, offset: 250, scale: 3, affine: true, batchStats, want: { dx: true, dGamma: true, dBeta: true }, seed: 17 });
  }
});

test('float64 inputs go to the reference; the arena is left as found', () => {
  const s = { outer: 2, C: 3, inner: 5 };
  const rand = seeded(8);
  const x = Float64Array.from(randomArray(30, rand, 1)), mean = new Float64Array(3), v = new Float64Array(3);
  const m2 = new Float64Array(3), v2 = new Float64Array(3);
  channelStats(x, s, mean, v);
  channelStatsWasm(x, s, m2, v2, { minElements: 0 });
  assert.equal(Array.from(m2), Array.from(mean));
  assert.equal(Array.from(v2), Array.from(v));
  if (!wasmOrSkip('wasm batch norm arena')) return;
  const rt = requireRuntime();
  const before = rt.used;
  const x32 = Float32Array.from(x);
  channelStatsWasm(x32, s, m2, v2, { minElements: 0, minParallel: 0 });
  channelNormalizeWasm(x32, s, m2, v2, null, null, new Float32Array(30), { minElements: 0 });
  channelNormalizeBackwardWasm(x32, x32, s, m2, v2, null, true, new Float32Array(30), null, null, { minElements: 0 });
  assert.is(rt.used, before);
});

test.run();
