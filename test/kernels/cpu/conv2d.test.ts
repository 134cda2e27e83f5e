/**
 * Conv2d kernels: the fast versions (im2col + gemm, the depthwise direct path, the 1×1 shortcut) against the
 * reference loops on random shapes, and the reference backward passes proven to be the true adjoints of the
 * forward pass.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import {
  conv2d, conv2dBackwardInput, conv2dBackwardInputRef, conv2dBackwardWeight, conv2dBackwardWeightRef, conv2dRef,
  type Conv2dParams,
} from '../../../kernels/cpu/conv2d.ts';
import type { FloatArray } from '../../../src/tensor/dtype.ts';
import { convParamsArb } from '../../helpers/conv_shapes.ts';

type FloatArrayCtor = Float32ArrayConstructor | Float64ArrayConstructor;

const shapes = convParamsArb({ channelsPerGroup: 4, outPerGroup: 4, H: 9, W: 9, kernel: 7, pad: 3 });

/**
 * Fixed shapes for each fast path: the 1×1 shortcut, a 1×1 that must not take it (output one row short), a strided
 * 1×1, a 7×7 depthwise, depthwise filters wider than the 8-lane register tile, a dilated grouped conv.
 */
const namedShapes: Conv2dParams[] = [
  { N: 2, C: 5, H: 6, W: 7, K: 3, R: 1, S: 1, OH: 6, OW: 7, strideH: 1, strideW: 1, padH: 0, padW: 0, dilationH: 1, dilationW: 1, groups: 1 },
  { N: 2, C: 5, H: 6, W: 7, K: 3, R: 1, S: 1, OH: 5, OW: 7, strideH: 1, strideW: 1, padH: 0, padW: 0, dilationH: 1, dilationW: 1, groups: 1 },
  { N: 2, C: 6, H: 6, W: 7, K: 4, R: 1, S: 1, OH: 3, OW: 4, strideH: 2, strideW: 2, padH: 0, padW: 0, dilationH: 1, dilationW: 1, groups: 2 },
  { N: 2, C: 4, H: 9, W: 8, K: 4, R: 7, S: 7, OH: 9, OW: 8, strideH: 1, strideW: 1, padH: 3, padW: 3, dilationH: 1, dilationW: 1, groups: 4 },
  { N: 2, C: 3, H: 5, W: 12, K: 3, R: 3, S: 11, OH: 5, OW: 12, strideH: 1, strideW: 1, padH: 1, padW: 5, dilationH: 1, dilationW: 1, groups: 3 },
  { N: 1, C: 2, H: 6, W: 19, K: 2, R: 2, S: 9, OH: 2, OW: 10, strideH: 2, strideW: 2, padH: 0, padW: 4, dilationH: 2, dilationW: 1, groups: 2 },
  { N: 1, C: 6, H: 10, W: 9, K: 9, R: 3, S: 2, OH: 4, OW: 7, strideH: 2, strideW: 1, padH: 1, padW: 2, dilationH: 2, dilationW: 2, groups: 3 },
];

function randomArray(ctor: FloatArrayCtor, n: number): FloatArray {
  const out = new ctor(n);
  for (let i = 0; i < n; i++) out[i] = Math.random() * 2 - 1;
  return out;
}

const abs = (x: FloatArray) => Float64Array.from(x, Math.abs);

function sizes(p: Conv2dParams) {
  return {
    x: p.N * p.C * p.H * p.W,
    w: p.K * (p.C / p.groups) * p.R * p.S,
    y: p.N * p.K * p.OH * p.OW,
  };
}

/**
 * Fast and reference add the same products in different orders, with different intermediate roundings to the
 * output type (gemm blocks, col2im adds). Each is within about (T + 2)·u·S of the exact value, where T bounds the
 * number of terms per output, S = Σ|terms| is computed by running the reference on |inputs|, and u is the
 * output type's unit roundoff; so they must agree to twice that.
 */
function assertClose(
  what: string, p: Conv2dParams, ctor: FloatArrayCtor, fast: FloatArray, ref: FloatArray, magnitude: FloatArray,
) {
  const terms = (p.C / p.groups) * p.R * p.S + (p.K / p.groups) * p.R * p.S + p.N * p.OH * p.OW;
  const u = ctor === Float32Array ? 2 ** -24 : 2 ** -53;
  for (let i = 0; i < ref.length; i++) {
    if (!(Math.abs(fast[i] - ref[i]) <= 2 * (terms + 2) * u * magnitude[i])) {
      assert.unreachable(`${what} ${ctor.name} ${JSON.stringify(p)} [${i}]: fast ${fast[i]} ref ${ref[i]}`);
    }
  }
}

function checkFastAgainstRef(ctor: FloatArrayCtor, p: Conv2dParams) {
  const n = sizes(p);
  const x = randomArray(ctor, n.x), w = randomArray(ctor, n.w), dy = randomArray(ctor, n.y);

  // Outputs start as NaN so that any element a kernel forgets to write shows up.
  const yFast = new ctor(n.y).fill(NaN), yRef = new ctor(n.y), yMag = new Float64Array(n.y);
  conv2d(x, w, yFast, p);
  conv2dRef(x, w, yRef, p);
  conv2dRef(abs(x), abs(w), yMag, p);
  assertClose('forward', p, ctor, yFast, yRef, yMag);

  const dxFast = new ctor(n.x).fill(NaN), dxRef = new ctor(n.x), dxMag = new Float64Array(n.x);
  conv2dBackwardInput(dy, w, dxFast, p);
  conv2dBackwardInputRef(dy, w, dxRef, p);
  conv2dBackwardInputRef(abs(dy), abs(w), dxMag, p);
  assertClose('backward input', p, ctor, dxFast, dxRef, dxMag);

  const dwFast = new ctor(n.w).fill(NaN), dwRef = new ctor(n.w), dwMag = new Float64Array(n.w);
  conv2dBackwardWeight(x, dy, dwFast, p);
  conv2dBackwardWeightRef(x, dy, dwRef, p);
  conv2dBackwardWeightRef(abs(x), abs(dy), dwMag, p);
  assertClose('backward weight', p, ctor, dwFast, dwRef, dwMag);
}

for (const ctor of [Float64Array, Float32Array]) {
  test(`fast conv2d passes == reference on random shapes (${ctor.name})`, () => {
    fc.assert(fc.property(shapes, (p) => checkFastAgainstRef(ctor, p)), { numRuns: 50 });
  });

  test(`fast conv2d passes == reference on shapes that take each fast path (${ctor.name})`, () => {
    for (const p of namedShapes) checkFastAgainstRef(ctor, p);
  });
}

function dot(a: FloatArray, b: FloatArray): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += a[i] * b[i];
  return sum;
}

test('reference backward passes are the adjoints of conv: <conv(x,w), dy> = <x, dx(dy,w)> = <w, dw(x,dy)>', () => {
  fc.assert(fc.property(shapes, (p) => {
    const n = sizes(p);
    const x = randomArray(Float64Array, n.x), w = randomArray(Float64Array, n.w);
    const dy = randomArray(Float64Array, n.y);
    const y = new Float64Array(n.y), dx = new Float64Array(n.x), dw = new Float64Array(n.w);
    conv2dRef(x, w, y, p);
    conv2dBackwardInputRef(dy, w, dx, p);
    conv2dBackwardWeightRef(x, dy, dw, p);
    // All three are the same sum Σ w·x·dy over every tap, in different orders: compare relative to Σ|w·x·dy|.
    const yMag = new Float64Array(n.y);
    conv2dRef(abs(x), abs(w), yMag, p);
    const scale = dot(yMag, abs(dy)) + 1e-300;
    const viaY = dot(y, dy), viaX = dot(x, dx), viaW = dot(w, dw);
    assert.ok(Math.abs(viaY - viaX) <= 1e-12 * scale, `<y,dy> ${viaY} vs <x,dx> ${viaX} for ${JSON.stringify(p)}`);
    assert.ok(Math.abs(viaY - viaW) <= 1e-12 * scale, `<y,dy> ${viaY} vs <w,dw> ${viaW} for ${JSON.stringify(p)}`);
  }), { numRuns: 50 });
});

test('conv2dRef on a hand-checked case: 3×3 ones kernel, padding 1, over a 3×3 ramp', () => {
  const x = new Float64Array([1, 2, 3, 4, 5, 6, 7, 8, 9]);
  const w = new Float64Array(9).fill(1);
  const y = new Float64Array(9);
  const p: Conv2dParams = {
    N: 1, C: 1, H: 3, W: 3, K: 1, R: 3, S: 3, OH: 3, OW: 3,
    strideH: 1, strideW: 1, padH: 1, padW: 1, dilationH: 1, dilationW: 1, groups: 1,
  };
  conv2dRef(x, w, y, p);
  // Each output is the sum of its in-bounds 3×3 neighbourhood.
  assert.equal(Array.from(y), [12, 21, 16, 27, 45, 33, 24, 39, 28]);
});

test.run();
