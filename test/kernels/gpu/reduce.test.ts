/**
 * gpu.js reductions against kernels/cpu/reduce.ts, per gpu.js mode present: sum, max and min over random axis
 * sets of random shapes (up to 5 axes), with the chunk length forced small so that the multi-pass path runs
 * on small shapes, plus long rows on the default chunk, NaN propagation, and the mapped folds (Σa², Σ(a − c),
 * Σ(a − c)², Σ((a − c) − b)², Σa·b, Σa·(b − c)) against float64 loops.
 * Tolerance: max/min are exact; a float32 sum of R terms is within R·u·Σ|terms| of the exact sum (u = 2⁻²⁴)
 * and the reference rounds a float64 sum once: assertClose allows 2·(R + 2)·u·Σ|terms|.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { reduce, type ReduceOp } from '../../../kernels/cpu/reduce.ts';
import * as gpuRed from '../../../kernels/gpu/reduce.ts';
import { assertClose, forEachMode, randomF32, seeded } from './helpers.ts';

const size = (s: readonly number[]) => s.reduce((x, y) => x * y, 1);

function check(rt: Parameters<typeof gpuRed.reduce>[0], op: ReduceOp, x: Float32Array, shape: number[], axes: number[], chunk: number): void {
  const outShape = shape.filter((_, i) => !axes.includes(i));
  const want = new Float32Array(size(outShape));
  reduce(op, x, shape, axes, want);
  const d = gpuRed.reduce(rt, op, x, shape, axes, chunk);
  const got = d.read();
  d.dispose();
  const what = `${op} ${JSON.stringify(shape)} over ${JSON.stringify(axes)} (chunk ${chunk})`;
  if (op === 'sum') {
    const mag = new Float32Array(want.length);
    reduce('sum', x.map(Math.abs), shape, axes, mag);
    assertClose(what, got, want, mag, size(shape) / Math.max(1, want.length));
  } else {
    assert.equal(Array.from(got), Array.from(want), what);
  }
}

forEachMode('gpu reduce sum/max/min equal the reference on random shapes and axes', (rt) => {
  const before = rt.liveTextures();
  fc.assert(fc.property(
    fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 1, maxLength: 5 }), fc.nat(), fc.constantFrom<ReduceOp>('sum', 'max', 'min'),
    fc.constantFrom(2, 3, 7, gpuRed.CHUNK), fc.integer(),
    (shape, axisBits, op, chunk, seed) => {
      const axes = shape.map((_, i) => i).filter((i) => (axisBits >> i) & 1);
      check(rt, op, randomF32(size(shape), seeded(seed)), shape, axes, chunk);
    }), { numRuns: 20 });
  assert.is(rt.liveTextures(), before, 'intermediate passes are freed');
});

forEachMode('gpu reduce over long rows (several passes on the default chunk) and all axes', (rt) => {
  const rand = seeded(3);
  const x = randomF32(3 * 2500, rand).map((v) => v + 0.25);
  check(rt, 'sum', x, [3, 2500], [1], gpuRed.CHUNK);
  check(rt, 'sum', x, [3, 2500], [0, 1], gpuRed.CHUNK);
  check(rt, 'max', x, [3, 2500], [0, 1], gpuRed.CHUNK);
  check(rt, 'sum', x, [3, 50, 50], [0, 2], 16);
  check(rt, 'min', x, [3, 50, 50], [0, 2], 16);
  check(rt, 'sum', x, [3, 50, 50], [], gpuRed.CHUNK);
});

forEachMode('gpu reduce: NaN wins max and min, an empty reduction gives the identity', (rt) => {
  const x = new Float32Array([1, NaN, 3, 4, 5, 6]);
  for (const op of ['max', 'min'] as const) {
    const d = gpuRed.reduce(rt, op, x, [2, 3], [1], 2);
    const got = d.read();
    d.dispose();
    assert.ok(Number.isNaN(got[0]), `${op}: NaN row gives ${got[0]}`);
    assert.is(got[1], op === 'max' ? 6 : 4);
  }
  const e = new Float32Array(0);
  for (const [op, v] of [['sum', 0], ['max', -Infinity], ['min', Infinity]] as const) {
    const d = gpuRed.reduce(rt, op, e, [3, 0], [1]);
    assert.equal(Array.from(d.read()), [v, v, v], op);
    d.dispose();
  }
});

forEachMode('gpu mapped folds equal float64 loops', (rt) => {
  const rand = seeded(11);
  const [R, D] = [37, 5];
  const a = randomF32(R * D, rand), b = randomF32(R * D, rand), c = randomF32(D, rand);
  for (const f of ['sumSq', 'sumDev', 'sumSqDev', 'sumSqShift', 'sumDot', 'sumDotDev'] as const) {
    const want = new Float64Array(D), mag = new Float64Array(D);
    for (let r = 0; r < R; r++) {
      for (let j = 0; j < D; j++) {
        const i = r * D + j;
        const t = {
          sumSq: a[i] * a[i], sumDev: a[i] - c[j], sumSqDev: (a[i] - c[j]) ** 2, sumSqShift: (a[i] - c[j] - b[j]) ** 2,
          sumDot: a[i] * b[i], sumDotDev: a[i] * (b[i] - c[j]),
        }[f];
        want[j] += t;
        mag[j] += Math.abs(t) + (f.endsWith('Dev') || f === 'sumSqShift' ? (Math.abs(a[i]) + 2) * (Math.abs(c[j]) + Math.abs(b[j])) * 2 : 0);
      }
    }
    const d = gpuRed.fold(rt, f, [R, D], [0], a, b, c, 8);
    assertClose(f, d.read(), want, mag, R);
    d.dispose();
  }
});

test.run();
