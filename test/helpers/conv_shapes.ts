/**
 * Random convolution shapes shared by the kernel tests (reference, wasm, gpu): dense, grouped (groups dividing
 * C and K), depthwise (groups = C = K) and depthwise with a channel multiplier (K = 2C). OH/OW are the usual
 * sizes give or take one row or column, since the kernels take them as given (transposed convolutions pass
 * sizes with output padding). Each suite picks its own size limits.
 */
import fc from 'fast-check';
import type { Conv2dParams } from '../../kernels/cpu/conv2d.ts';

/** Output size of a convolution along one axis, as PyTorch computes it (may be ≤ 0 for a too-small input). */
export function convOut(inSize: number, k: number, stride: number, pad: number, dilation: number): number {
  return Math.floor((inSize + 2 * pad - dilation * (k - 1) - 1) / stride) + 1;
}

export interface ConvShapeLimits {
  channelsPerGroup: number; outPerGroup: number; H: number; W: number; kernel: number; pad: number;
  /** the kinds to draw from (repeat one to weight it) */
  kinds?: readonly ('dense' | 'grouped' | 'depthwise' | 'multiplier')[];
  stride?: fc.Arbitrary<number>;
}

export function convParamsArb(l: ConvShapeLimits): fc.Arbitrary<Conv2dParams> {
  const stride = l.stride ?? fc.integer({ min: 1, max: 3 });
  return fc.record({
    N: fc.integer({ min: 1, max: 2 }),
    kind: fc.constantFrom(...(l.kinds ?? ['dense', 'grouped', 'depthwise', 'multiplier'] as const)),
    groups: fc.integer({ min: 2, max: 3 }),
    channelsPerGroup: fc.integer({ min: 1, max: l.channelsPerGroup }),
    outPerGroup: fc.integer({ min: 1, max: l.outPerGroup }),
    H: fc.integer({ min: 1, max: l.H }), W: fc.integer({ min: 1, max: l.W }),
    R: fc.integer({ min: 1, max: l.kernel }), S: fc.integer({ min: 1, max: l.kernel }),
    strideH: stride, strideW: stride,
    padH: fc.integer({ min: 0, max: l.pad }), padW: fc.integer({ min: 0, max: l.pad }),
    dilationH: fc.integer({ min: 1, max: 2 }), dilationW: fc.integer({ min: 1, max: 2 }),
    extraOH: fc.integer({ min: -1, max: 1 }), extraOW: fc.integer({ min: -1, max: 1 }),
  }).map(({ kind, groups, channelsPerGroup, outPerGroup, extraOH, extraOW, ...s }) => {
    let G: number, C: number, K: number;
    switch (kind) {
      case 'dense': G = 1; C = channelsPerGroup; K = outPerGroup; break;
      case 'grouped': G = groups; C = groups * channelsPerGroup; K = groups * outPerGroup; break;
      case 'depthwise': G = C = K = groups * channelsPerGroup; break;
      default: G = C = groups * channelsPerGroup; K = 2 * C; break;
    }
    const OH = Math.max(0, convOut(s.H, s.R, s.strideH, s.padH, s.dilationH) + extraOH);
    const OW = Math.max(0, convOut(s.W, s.S, s.strideW, s.padW, s.dilationW) + extraOW);
    return { ...s, C, K, groups: G, OH, OW };
  });
}
