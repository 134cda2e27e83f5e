/**
 * gpu.js movement kernels against kernels/cpu/copy.ts and gather.ts, per gpu.js mode present: strided copies
 * (permutes, narrows, expands, with offsets) of random shapes; writeWindow at the windows narrow and cat make
 * (random sub-boxes of random shapes, also permuted) against stridedCopy into a copy of whole, and its refusal
 * of overlapping windows; indexSelect, and indexAdd both with distinct indices (the host-built inverse map)
 * and with repeats (the loop). Copies are exact; indexAdd with repeats sums in the reference's order.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { stridedCopy } from '../../../kernels/cpu/copy.ts';
import { indexAdd, indexSelect } from '../../../kernels/cpu/gather.ts';
import * as gpuMove from '../../../kernels/gpu/movement.ts';
import { stridesOf } from '../../../src/tensor/shape.ts';
import { forEachMode, randomF32, seeded } from './helpers.ts';

const size = (s: readonly number[]) => s.reduce((x, y) => x * y, 1);

function same(what: string, got: Float32Array, want: Float32Array): void {
  assert.is(got.length, want.length, `${what}: length`);
  for (let i = 0; i < want.length; i++) if (!Object.is(got[i], want[i])) assert.unreachable(`${what} [${i}]: gpu ${got[i]}, reference ${want[i]}`);
}

/** A random view of a (base) array: axes permuted, each narrowed to [lo, lo + len), some expanded (stride 0). */
const viewArb = fc.record({
  base: fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 1, maxLength: 5 }),
  perm: fc.array(fc.nat(), { minLength: 5, maxLength: 5 }),
  cuts: fc.array(fc.tuple(fc.nat(), fc.nat()), { minLength: 5, maxLength: 5 }),
  expand: fc.nat(),
  seed: fc.integer(),
});

forEachMode('gpu stridedCopy equals the reference on random permuted, narrowed, expanded views', (rt) => {
  fc.assert(fc.property(viewArb, ({ base, perm, cuts, expand, seed }) => {
    const x = randomF32(size(base), seeded(seed));
    const bs = stridesOf(base);
    const order = base.map((_, i) => i).sort((a, b) => perm[a] - perm[b] || a - b);
    let offset = 0;
    const shape: number[] = [], strides: number[] = [];
    for (const ax of order) {
      const lo = cuts[ax][0] % base[ax], len = 1 + (cuts[ax][1] % (base[ax] - lo));
      offset += lo * bs[ax];
      const e = (expand >> ax) & 1;
      shape.push(e ? len + 1 : len);
      strides.push(e ? 0 : bs[ax]);
    }
    const want = new Float32Array(size(shape));
    stridedCopy(shape, x, offset, strides, want, 0, stridesOf(shape));
    const d = gpuMove.stridedCopy(rt, shape, x, offset, strides);
    same(`view ${JSON.stringify(shape)} strides ${JSON.stringify(strides)} + ${offset} of ${JSON.stringify(base)}`, d.read(), want);
    d.dispose();
  }), { numRuns: 15 });
});

forEachMode('gpu writeWindow equals a strided copy into whole at random sub-boxes (narrow and cat windows)', (rt) => {
  fc.assert(fc.property(viewArb, fc.boolean(), ({ base, perm, cuts, seed }, permute) => {
    const rand = seeded(seed);
    const whole = randomF32(size(base), rand);
    const bs = stridesOf(base);
    // the window: a sub-box of base, its axes in base order or (permute) in a shuffled order
    const order = base.map((_, i) => i);
    if (permute) order.sort((a, b) => perm[a] - perm[b] || a - b);
    let offset = 0;
    const shape: number[] = [], strides: number[] = [];
    for (const ax of order) {
      const lo = cuts[ax][0] % base[ax], len = 1 + (cuts[ax][1] % (base[ax] - lo));
      offset += lo * bs[ax];
      shape.push(len);
      strides.push(bs[ax]);
    }
    const part = randomF32(size(shape), rand);
    const want = whole.slice();
    stridedCopy(shape, part, 0, stridesOf(shape), want, offset, strides);
    const d = gpuMove.writeWindow(rt, whole, whole.length, part, shape, offset, strides);
    same(`window ${JSON.stringify(shape)} strides ${JSON.stringify(strides)} + ${offset} of ${JSON.stringify(base)}`, d.read(), want);
    d.dispose();
  }), { numRuns: 15 });
});

forEachMode('gpu writeWindow: cat of three parts along axis 1; overlapping windows are refused', (rt) => {
  const rand = seeded(5);
  // out (2, 3+1+2, 4) from parts (2, 3, 4), (2, 1, 4), (2, 2, 4)
  const widths = [3, 1, 2], outShape = [2, 6, 4], os = stridesOf(outShape);
  let cur = gpuMove.writeWindow(rt, new Float32Array(48), 48, new Float32Array(0), [0], 0, [1]);
  const want = new Float32Array(48);
  let at = 0;
  for (const w of widths) {
    const shape = [2, w, 4];
    const part = randomF32(size(shape), rand);
    stridedCopy(shape, part, 0, stridesOf(shape), want, at * os[1], os);
    const next = gpuMove.writeWindow(rt, cur, 48, part, shape, at * os[1], os);
    cur.dispose();
    cur = next;
    at += w;
  }
  same('cat', cur.read(), want);
  cur.dispose();
  assert.throws(() => gpuMove.writeWindow(rt, new Float32Array(10), 10, new Float32Array(6), [2, 3], 0, [2, 1]), /not a sub-box/);
  assert.throws(() => gpuMove.writeWindow(rt, new Float32Array(10), 10, new Float32Array(6), [2, 3], 0, [1, 0]), /not a sub-box/);
  assert.throws(() => gpuMove.writeWindow(rt, new Float32Array(10), 10, new Float32Array(6), [2, 3], 5, [3, 1]), /outside/);
});

const indexArb = fc.record({
  outer: fc.integer({ min: 1, max: 3 }), n: fc.integer({ min: 1, max: 6 }), inner: fc.integer({ min: 1, max: 4 }),
  picks: fc.array(fc.nat(), { minLength: 1, maxLength: 8 }), distinct: fc.boolean(), seed: fc.integer(),
});

/** index: picks mod n, or (distinct) a random selection of distinct rows. */
function makeIndex(n: number, picks: number[], distinct: boolean): Int32Array {
  if (!distinct) return Int32Array.from(picks, (p) => p % n);
  const rows = Array.from({ length: n }, (_, i) => i).sort((a, b) => (picks[a % picks.length] * 7 + a) % 11 - (picks[b % picks.length] * 7 + b) % 11);
  return Int32Array.from(rows.slice(0, Math.min(n, picks.length)));
}

forEachMode('gpu indexSelect and indexAdd (distinct indices and repeats) equal the reference', (rt) => {
  let sawRepeat = false, sawDistinct = false;
  fc.assert(fc.property(indexArb, ({ outer, n, inner, picks, distinct, seed }) => {
    const index = makeIndex(n, picks, distinct);
    const m = index.length;
    const repeats = new Set(index).size < m;
    if (repeats) sawRepeat = true; else sawDistinct = true;
    const rand = seeded(seed);
    const x = randomF32(outer * n * inner, rand);
    const sel = new Float32Array(outer * m * inner);
    indexSelect(x, outer, n, inner, index, sel);
    const ds = gpuMove.indexSelect(rt, x, outer, n, inner, index);
    same(`indexSelect (${outer}, ${n}, ${inner}) at ${index.join()}`, ds.read(), sel);
    ds.dispose();
    const dy = randomF32(outer * m * inner, rand);
    const dx = new Float32Array(outer * n * inner);
    indexAdd(dy, outer, n, inner, index, dx);
    const da = gpuMove.indexAdd(rt, dy, outer, n, inner, index);
    const got = da.read();
    da.dispose();
    // with repeats the float32 sums run in the reference's order, but GL may contract or reorder: one rounding
    for (let i = 0; i < dx.length; i++) {
      if (!(Math.abs(got[i] - dx[i]) <= (repeats ? 2 ** -23 * m * Math.abs(dx[i]) + 1e-7 : 0))) {
        assert.unreachable(`indexAdd (${outer}, ${n}, ${inner}) at ${index.join()} [${i}]: gpu ${got[i]}, reference ${dx[i]}`);
      }
    }
  }), {
    numRuns: 12,
    examples: [
      [{ outer: 2, n: 5, inner: 3, picks: [4, 0, 2], distinct: false, seed: 1 }],
      [{ outer: 2, n: 4, inner: 2, picks: [1, 3, 1, 1, 0], distinct: false, seed: 2 }],
    ],
  });
  assert.ok(sawRepeat && sawDistinct, 'both indexAdd paths ran');
});

test.run();
