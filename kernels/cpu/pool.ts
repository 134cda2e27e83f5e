/**
 * 2-D pooling over NCHW typed arrays with PyTorch's CPU semantics: max pool (with argmax indices and dilation),
 * average pool (count_include_pad, divisor_override) and adaptive average pool, each with its backward.
 * OH and OW are given, so ceil_mode is the caller's choice of OH/OW; the window rules below then match PyTorch's.
 * These plain loops are both the reference and the version used: pooling is memory-bound and cheap next to conv.
 * Left out: adaptive max pool, 1-D/3-D pools, lp pool, threads.
 */
import type { FloatArray } from '../../src/tensor/dtype.ts';

export interface Pool2dParams {
  N: number; C: number; H: number; W: number;
  OH: number; OW: number;
  kH: number; kW: number;
  strideH: number; strideW: number;
  padH: number; padW: number;
  dilationH: number; dilationW: number;
}

export interface AvgPool2dParams extends Pool2dParams {
  /** Divide by the window size counted over the padded input (true) or over the real input only (false). */
  countIncludePad: boolean;
  /** Divide by this instead. */
  divisorOverride?: number;
}

export interface AdaptivePool2dParams {
  N: number; C: number; H: number; W: number;
  OH: number; OW: number;
}

/**
 * y[n, c, oh, ow] = max over the window rows ih = oh·sH − pH + i·dH, columns iw = ow·sW − pW + j·dW that lie in
 * the input; padding acts as −∞. argmax gets the flat index ih·W + iw within the (n, c) plane. The scan is
 * row-major with a strict '>', so a tie keeps the first maximum, except that a NaN always takes over (so the
 * result is NaN and the index is the last NaN's), as PyTorch's CPU kernel does.
 */
export function maxPool2d(x: FloatArray, y: FloatArray, argmax: Int32Array, p: Pool2dParams): void {
  const { N, C, H, W, OH, OW, dilationH, dilationW } = p;
  const rows = dilatedWindows(OH, p.strideH, p.padH, p.kH, dilationH, H);
  const cols = dilatedWindows(OW, p.strideW, p.padW, p.kW, dilationW, W);
  for (let plane = 0; plane < N * C; plane++) {
    const xPlane = plane * H * W;
    const yPlane = plane * OH * OW;
    for (let oh = 0; oh < OH; oh++) {
      const ih0 = rows[2 * oh], ih1 = rows[2 * oh + 1];
      for (let ow = 0; ow < OW; ow++) {
        const iw0 = cols[2 * ow], iw1 = cols[2 * ow + 1];
        let best = -Infinity;
        let bestIndex = ih0 * W + iw0;
        for (let ih = ih0; ih < ih1; ih += dilationH) {
          for (let iw = iw0; iw < iw1; iw += dilationW) {
            const v = x[xPlane + ih * W + iw];
            if (v > best || v !== v) {
              best = v;
              bestIndex = ih * W + iw;
            }
          }
        }
        y[yPlane + oh * OW + ow] = best;
        argmax[yPlane + oh * OW + ow] = bestIndex;
      }
    }
  }
}

/**
 * The first and past-the-end input positions of each output's dilated window, PyTorch-style, as pairs: the end is
 * clipped to the input, and the start steps forward by the dilation until it is inside, so every position
 * visited is a window tap.
 */
export function dilatedWindows(count: number, stride: number, pad: number, kernel: number, dilation: number, inSize: number): Int32Array {
  const out = new Int32Array(2 * count);
  for (let o = 0; o < count; o++) {
    let start = o * stride - pad;
    const end = Math.min(start + (kernel - 1) * dilation + 1, inSize);
    while (start < 0) start += dilation;
    out[2 * o] = start;
    out[2 * o + 1] = end;
  }
  return out;
}

/** dx overwritten: dx[n, c, argmax] += dy[n, c, oh, ow] for every output (windows may overlap). */
export function maxPool2dBackward(dy: FloatArray, argmax: Int32Array, dx: FloatArray, p: Pool2dParams): void {
  const { N, C, H, W, OH, OW } = p;
  dx.fill(0, 0, N * C * H * W);
  for (let plane = 0; plane < N * C; plane++) {
    const xPlane = plane * H * W;
    const yPlane = plane * OH * OW;
    for (let i = 0; i < OH * OW; i++) dx[xPlane + argmax[yPlane + i]] += dy[yPlane + i];
  }
}

/**
 * An average-pool window, PyTorch's rule: the window [start, start + k) is first clipped to the padded input
 * [−pad, size + pad), which gives the size counted when padding is included, then to the input [0, size).
 */
interface AvgWindow { h0: number; h1: number; w0: number; w1: number; divisor: number }

function avgWindow(oh: number, ow: number, p: AvgPool2dParams): AvgWindow {
  const { H, W, kH, kW, strideH, strideW, padH, padW, countIncludePad, divisorOverride } = p;
  let h0 = oh * strideH - padH;
  let w0 = ow * strideW - padW;
  let h1 = Math.min(h0 + kH, H + padH);
  let w1 = Math.min(w0 + kW, W + padW);
  const paddedSize = (h1 - h0) * (w1 - w0);
  h0 = Math.max(h0, 0);
  w0 = Math.max(w0, 0);
  h1 = Math.min(h1, H);
  w1 = Math.min(w1, W);
  const divisor = divisorOverride ?? (countIncludePad ? paddedSize : (h1 - h0) * (w1 - w0));
  return { h0, h1, w0, w1, divisor };
}

/** y[n, c, oh, ow] = (Σ of x over the clipped window) / divisor; 0 where the window holds no input. */
export function avgPool2d(x: FloatArray, y: FloatArray, p: AvgPool2dParams): void {
  const { N, C, H, W, OH, OW } = p;
  for (let plane = 0; plane < N * C; plane++) {
    const xPlane = plane * H * W;
    const yPlane = plane * OH * OW;
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++) {
        const { h0, h1, w0, w1, divisor } = avgWindow(oh, ow, p);
        let sum = 0;
        for (let ih = h0; ih < h1; ih++) {
          for (let iw = w0; iw < w1; iw++) sum += x[xPlane + ih * W + iw];
        }
        y[yPlane + oh * OW + ow] = h0 < h1 && w0 < w1 ? sum / divisor : 0;
      }
    }
  }
}

/** dx overwritten: each dy[n, c, oh, ow] / divisor is added to every input of its clipped window. */
export function avgPool2dBackward(dy: FloatArray, dx: FloatArray, p: AvgPool2dParams): void {
  const { N, C, H, W, OH, OW } = p;
  dx.fill(0, 0, N * C * H * W);
  for (let plane = 0; plane < N * C; plane++) {
    const xPlane = plane * H * W;
    const yPlane = plane * OH * OW;
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++) {
        const { h0, h1, w0, w1, divisor } = avgWindow(oh, ow, p);
        const share = dy[yPlane + oh * OW + ow] / divisor;
        for (let ih = h0; ih < h1; ih++) {
          for (let iw = w0; iw < w1; iw++) dx[xPlane + ih * W + iw] += share;
        }
      }
    }
  }
}

/** Adaptive window along one axis: rows ⌊i·in/out⌋ … ⌈(i+1)·in/out⌉ (exclusive), as PyTorch's start/end_index. */
function adaptiveStart(i: number, outSize: number, inSize: number): number {
  return Math.floor((i * inSize) / outSize);
}

function adaptiveEnd(i: number, outSize: number, inSize: number): number {
  return Math.ceil(((i + 1) * inSize) / outSize);
}

/** y[n, c, oh, ow] = mean of x over the adaptive window of (oh, ow). */
export function adaptiveAvgPool2d(x: FloatArray, y: FloatArray, p: AdaptivePool2dParams): void {
  const { N, C, H, W, OH, OW } = p;
  for (let plane = 0; plane < N * C; plane++) {
    const xPlane = plane * H * W;
    const yPlane = plane * OH * OW;
    for (let oh = 0; oh < OH; oh++) {
      const h0 = adaptiveStart(oh, OH, H), h1 = adaptiveEnd(oh, OH, H);
      for (let ow = 0; ow < OW; ow++) {
        const w0 = adaptiveStart(ow, OW, W), w1 = adaptiveEnd(ow, OW, W);
        let sum = 0;
        for (let ih = h0; ih < h1; ih++) {
          for (let iw = w0; iw < w1; iw++) sum += x[xPlane + ih * W + iw];
        }
        y[yPlane + oh * OW + ow] = sum / ((h1 - h0) * (w1 - w0));
      }
    }
  }
}

/** dx overwritten: each dy[n, c, oh, ow] / (window size) is added to every input of its adaptive window. */
export function adaptiveAvgPool2dBackward(dy: FloatArray, dx: FloatArray, p: AdaptivePool2dParams): void {
  const { N, C, H, W, OH, OW } = p;
  dx.fill(0, 0, N * C * H * W);
  for (let plane = 0; plane < N * C; plane++) {
    const xPlane = plane * H * W;
    const yPlane = plane * OH * OW;
    for (let oh = 0; oh < OH; oh++) {
      const h0 = adaptiveStart(oh, OH, H), h1 = adaptiveEnd(oh, OH, H);
      for (let ow = 0; ow < OW; ow++) {
        const w0 = adaptiveStart(ow, OW, W), w1 = adaptiveEnd(ow, OW, W);
        const share = dy[yPlane + oh * OW + ow] / ((h1 - h0) * (w1 - w0));
        for (let ih = h0; ih < h1; ih++) {
          for (let iw = w0; iw < w1; iw++) dx[xPlane + ih * W + iw] += share;
        }
      }
    }
  }
}
