/**
 * gpu.js elementwise kernels against kernels/cpu/elementwise.ts, per gpu.js mode present: every unary map on
 * random values (with the edge values 0, ±1 and a few negatives for log/sqrt), broadcasting binary ops and
 * `where` on random shapes up to 6 axes, affine and fill. Tolerance: one float32 rounding of the result plus the
 * single-precision error of exp/log/erf on GL (measured worst 3e-7 relative on llvmpipe, allowed 2e-6).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { binary, unary, where, type ArithOp, type UnaryOp } from '../../../kernels/cpu/elementwise.ts';
import * as gpuEl from '../../../kernels/gpu/elementwise.ts';
import { broadcastStrides, stridesOf } from '../../../src/tensor/shape.ts';
import { forEachMode, randomF32, seeded } from './helpers.ts';

function close(what: string, got: Float32Array, want: ArrayLike<number>, rel = 2e-6, abs = 2e-6): void {
  assert.is(got.length, want.length, `${what}: length`);
  for (let i = 0; i < want.length; i++) {
    const w = want[i], g = got[i];
    if (Number.isNaN(w) && Number.isNaN(g)) continue;
    if (w === g) continue;
    if (!(Math.abs(g - w) <= abs + rel * Math.abs(w))) assert.unreachable(`${what} [${i}]: gpu ${g}, reference ${w}`);
  }
}

const UNARY: UnaryOp[] = ['neg', 'exp', 'log', 'sqrt', 'rsqrt', 'abs', 'sign', 'relu', 'relu6', 'gelu', 'sigmoid', 'tanh', 'erf', 'reluGrad', 'relu6Grad', 'geluGrad'];

forEachMode('gpu unary maps equal the reference', (rt) => {
  const rand = seeded(7);
  const x = randomF32(1000, rand).map((v) => v * 8);
  x.set([0, 1, -1, 6, -0.5, 1e-3, 20, -20]);
  for (const op of UNARY) {
    const want = new Float32Array(x.length);
    unary(op, x, want);
    const d = gpuEl.unary(rt, op, x, x.length);
    close(op, d.read(), want, op === 'exp' || op === 'rsqrt' ? 4e-6 : 2e-6);
    d.dispose();
  }
});

const ARITH: ArithOp[] = ['add', 'sub', 'mul', 'div', 'maximum', 'minimum', 'pow'];

forEachMode('gpu broadcasting binary ops equal the reference on random shapes', (rt) => {
  fc.assert(fc.property(
    fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 0, maxLength: 6 }), fc.integer(), fc.integer(), fc.constantFrom(...ARITH),
    (shape, maskA, seed, op) => {
      const rand = seeded(seed);
      // each operand drops (broadcasts) some axes
      const aShape = shape.map((d, i) => (maskA >> i) & 1 ? 1 : d);
      const bShape = shape.map((d, i) => (maskA >> (i + 6)) & 1 ? 1 : d);
      const n = (s: number[]) => s.reduce((x, y) => x * y, 1);
      const a = randomF32(n(aShape), rand), b = randomF32(n(bShape), rand).map((v) => (op === 'div' ? v + Math.sign(v) * 0.5 : v));
      if (op === 'pow') for (let i = 0; i < a.length; i++) a[i] = Math.abs(a[i]) + 0.1;
      const as = broadcastStrides(aShape, shape), bs = broadcastStrides(bShape, shape);
      const want = new Float32Array(n(shape));
      binary(op, shape, a, as, b, bs, want, stridesOf(shape));
      const d = gpuEl.binary(rt, op, shape, a, as, b, bs);
      close(`${op} ${JSON.stringify(aShape)} ∘ ${JSON.stringify(bShape)}`, d.read(), want);
      d.dispose();
    }), { numRuns: 40 });
});

forEachMode('gpu where (broadcast condition and operands) equals the reference', (rt) => {
  fc.assert(fc.property(
    fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 0, maxLength: 6 }), fc.integer(), fc.integer(),
    (shape, masks, seed) => {
      const rand = seeded(seed);
      const drop = (k: number) => shape.map((d, i) => ((masks >> (i + 6 * k)) & 1 ? 1 : d));
      const [cShape, aShape, bShape] = [drop(0), drop(1), drop(2)];
      const n = (s: number[]) => s.reduce((x, y) => x * y, 1);
      const cond = Uint8Array.from({ length: n(cShape) }, () => (rand() < 0.5 ? 1 : 0));
      const a = randomF32(n(aShape), rand), b = randomF32(n(bShape), rand);
      const cs = broadcastStrides(cShape, shape), as = broadcastStrides(aShape, shape), bs = broadcastStrides(bShape, shape);
      const want = new Float32Array(n(shape));
      where(shape, cond, cs, a, as, b, bs, want, stridesOf(shape));
      const d = gpuEl.where(rt, shape, Float32Array.from(cond), cs, a, as, b, bs);
      close(`where ${JSON.stringify(cShape)} ? ${JSON.stringify(aShape)} : ${JSON.stringify(bShape)}`, d.read(), want, 0, 0);
      d.dispose();
    }), { numRuns: 25 });
});

forEachMode('gpu results chain on the device (pipeline) and are counted and freed', (rt) => {
  const before = rt.liveTextures();
  const x = new Float32Array([1, -2, 3, -4]);
  const r = gpuEl.unary(rt, 'relu', x, 4);
  const s = gpuEl.affine(rt, r, 4, 2, 1);
  close('relu then affine', s.read(), [3, 1, 7, 1]);
  const f = gpuEl.fill(rt, 3, 2.5);
  close('fill', f.read(), [2.5, 2.5, 2.5]);
  r.dispose(); s.dispose(); f.dispose();
  assert.is(rt.liveTextures(), before);
});

test.run();
