/** The fast gemm against its reference twin on random shapes, all transpose/accumulate modes and offsets. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { gemm, gemmRef, type GemmParams } from '../../../kernels/cpu/gemm.ts';
import type { FloatArray } from '../../../src/tensor/dtype.ts';

type FloatArrayCtor = Float32ArrayConstructor | Float64ArrayConstructor;

function randomArray(ctor: FloatArrayCtor, n: number, rand: () => number): FloatArray {
  const out = new ctor(n);
  for (let i = 0; i < n; i++) out[i] = rand() * 2 - 1;
  return out;
}

/** A tiny deterministic generator (mulberry32), so a failing seed reproduces. */
function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The two versions add the same products in a different order (the fast one in KC-deep blocks whose sums are
 * rounded to C's type), so they agree only up to rounding. Summing K products and the initial C value with unit
 * roundoff u errs by at most about (K + 2)·u·S, where S = Σₖ |op(A)ᵢₖ·op(B)ₖⱼ| + |Cᵢⱼ| is the magnitude of the
 * terms; each version is within that of the exact value, so they are within twice that of each other.
 * u is the output type's: 2⁻²⁴ for float32, 2⁻⁵³ for float64.
 */
function checkAgainstRef(ctor: FloatArrayCtor, p: GemmParams, offsets: [number, number, number], seed: number) {
  const rand = seeded(seed);
  const [aOff, bOff, cOff] = offsets;
  const a = randomArray(ctor, aOff + p.M * p.K + 3, rand);
  const b = randomArray(ctor, bOff + p.K * p.N + 3, rand);
  const c0 = randomArray(ctor, cOff + p.M * p.N + 3, rand);
  const cFast = c0.slice();
  const cRef = c0.slice();
  gemm(p, a, aOff, b, bOff, cFast, cOff);
  gemmRef(p, a, aOff, b, bOff, cRef, cOff);
  const magnitude = Float64Array.from(c0, Math.abs);
  const abs = (x: FloatArray) => Float64Array.from(x, Math.abs);
  gemmRef(p, abs(a), aOff, abs(b), bOff, magnitude, cOff);
  const u = ctor === Float32Array ? 2 ** -24 : 2 ** -53;
  for (let i = 0; i < cRef.length; i++) {
    const inside = i >= cOff && i < cOff + p.M * p.N;
    if (!inside) assert.is(cFast[i], c0[i], `gemm wrote outside C at ${i}`);
    else if (Math.abs(cFast[i] - cRef[i]) > 2 * (p.K + 2) * u * magnitude[i]) {
      assert.unreachable(`${ctor.name} ${JSON.stringify(p)} C[${i - cOff}]: fast ${cFast[i]} ref ${cRef[i]}`);
    }
  }
}

const sizeArb = fc.oneof(fc.constantFrom(0, 1, 3, 4, 5), fc.integer({ min: 0, max: 40 }));
const paramsArb = fc.record({
  M: sizeArb, N: sizeArb, K: sizeArb,
  transA: fc.boolean(), transB: fc.boolean(), accumulate: fc.boolean(),
});
const offsetsArb = fc.tuple(fc.nat(7), fc.nat(7), fc.nat(7));

for (const ctor of [Float32Array, Float64Array]) {
  test(`gemm == gemmRef on small random shapes (${ctor.name})`, () => {
    fc.assert(fc.property(paramsArb, offsetsArb, fc.nat(), (p, offsets, seed) => {
      checkAgainstRef(ctor, p, offsets, seed);
    }), { numRuns: 50 });
  });
}

test('gemm == gemmRef past the block sizes (M > 64, N > 2048, K > 256), every mode', () => {
  let seed = 1;
  for (const ctor of [Float32Array, Float64Array]) {
    for (const transA of [false, true]) {
      for (const transB of [false, true]) {
        for (const accumulate of [false, true]) {
          checkAgainstRef(ctor, { M: 67, N: 2053, K: 7, transA, transB, accumulate }, [1, 2, 3], seed++);
          checkAgainstRef(ctor, { M: 70, N: 9, K: 517, transA, transB, accumulate }, [0, 5, 1], seed++);
        }
      }
    }
  }
});

test('gemm with K = 0 gives zeros, or leaves C alone when accumulating', () => {
  const c = new Float32Array([1, 2, 3, 4]);
  const empty = new Float32Array(0);
  gemm({ M: 2, N: 2, K: 0, transA: false, transB: false, accumulate: true }, empty, 0, empty, 0, c, 0);
  assert.equal(Array.from(c), [1, 2, 3, 4]);
  gemm({ M: 2, N: 2, K: 0, transA: false, transB: false, accumulate: false }, empty, 0, empty, 0, c, 0);
  assert.equal(Array.from(c), [0, 0, 0, 0]);
});

test('gemm on a hand-checked product', () => {
  // [1 2 3; 4 5 6] · [7 8; 9 10; 11 12] = [58 64; 139 154]
  const a = new Float64Array([1, 2, 3, 4, 5, 6]);
  const b = new Float64Array([7, 8, 9, 10, 11, 12]);
  const c = new Float64Array(4);
  gemm({ M: 2, N: 2, K: 3, transA: false, transB: false, accumulate: false }, a, 0, b, 0, c, 0);
  assert.equal(Array.from(c), [58, 64, 139, 154]);
});

test.run();
