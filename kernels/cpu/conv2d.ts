/**
 * 2-D convolution (cross-correlation, as in PyTorch) over NCHW typed arrays, and its two backward passes:
 * with respect to the input (which is also the transposed convolution) and to the weight.
 *
 *   y[n, k, oh, ow] = Σ_{c ∈ group(k), r, s} w[k, c − c₀(k), r, s] · x[n, c, oh·sH − pH + r·dH, ow·sW − pW + s·dW]
 *
 * where x reads as 0 outside [0, H) × [0, W), group g owns input channels g·C/G … and output channels g·K/G …
 * The `…Ref` functions are the direct loops (the readable twins). The fast ones lower each (image, group) to one
 * gemm over an im2col buffer, and take a direct path for depthwise convolutions (G = C = K), where im2col would
 * copy R·S times the input to do a few flops per element. OH and OW are given, never derived: the transposed
 * convolution passes sizes that include output padding.
 * Left out: bias (an op adds it), threads, other layouts.
 */
import type { FloatArray } from '../../src/tensor/dtype.ts';
import { gemm } from './gemm.ts';

export interface Conv2dParams {
  N: number; C: number; H: number; W: number;
  K: number; R: number; S: number;
  OH: number; OW: number;
  strideH: number; strideW: number;
  padH: number; padW: number;
  dilationH: number; dilationW: number;
  groups: number;
}

/** y = conv(x, w), overwritten. x: N×C×H×W, w: K×(C/G)×R×S, y: N×K×OH×OW. */
export function conv2dRef(x: FloatArray, w: FloatArray, y: FloatArray, p: Conv2dParams): void {
  const { N, C, H, W, K, R, S, OH, OW, strideH, strideW, padH, padW, dilationH, dilationW, groups } = p;
  const Cg = C / groups;
  const Kg = K / groups;
  for (let n = 0; n < N; n++) {
    for (let k = 0; k < K; k++) {
      const c0 = Math.floor(k / Kg) * Cg;
      for (let oh = 0; oh < OH; oh++) {
        for (let ow = 0; ow < OW; ow++) {
          let sum = 0;
          for (let c = 0; c < Cg; c++) {
            for (let r = 0; r < R; r++) {
              const ih = oh * strideH - padH + r * dilationH;
              if (ih < 0 || ih >= H) continue;
              for (let s = 0; s < S; s++) {
                const iw = ow * strideW - padW + s * dilationW;
                if (iw < 0 || iw >= W) continue;
                sum += w[((k * Cg + c) * R + r) * S + s] * x[((n * C + c0 + c) * H + ih) * W + iw];
              }
            }
          }
          y[((n * K + k) * OH + oh) * OW + ow] = sum;
        }
      }
    }
  }
}

/**
 * dx = ∂⟨y, dy⟩/∂x, overwritten: dx[n, c, ih, iw] = Σ over every (k, oh, ow, r, s) whose tap reads x[n, c, ih, iw]
 * of w[k, c − c₀, r, s] · dy[n, k, oh, ow]. This is the transposed convolution of dy with w.
 */
export function conv2dBackwardInputRef(dy: FloatArray, w: FloatArray, dx: FloatArray, p: Conv2dParams): void {
  const { N, C, H, W, K, R, S, OH, OW, strideH, strideW, padH, padW, dilationH, dilationW, groups } = p;
  const Cg = C / groups;
  const Kg = K / groups;
  dx.fill(0, 0, N * C * H * W);
  for (let n = 0; n < N; n++) {
    for (let k = 0; k < K; k++) {
      const c0 = Math.floor(k / Kg) * Cg;
      for (let oh = 0; oh < OH; oh++) {
        for (let ow = 0; ow < OW; ow++) {
          const g = dy[((n * K + k) * OH + oh) * OW + ow];
          for (let c = 0; c < Cg; c++) {
            for (let r = 0; r < R; r++) {
              const ih = oh * strideH - padH + r * dilationH;
              if (ih < 0 || ih >= H) continue;
              for (let s = 0; s < S; s++) {
                const iw = ow * strideW - padW + s * dilationW;
                if (iw < 0 || iw >= W) continue;
                dx[((n * C + c0 + c) * H + ih) * W + iw] += w[((k * Cg + c) * R + r) * S + s] * g;
              }
            }
          }
        }
      }
    }
  }
}

/** dw = ∂⟨y, dy⟩/∂w, overwritten: dw[k, c, r, s] = Σ_{n, oh, ow} dy[n, k, oh, ow] · x[n, c₀ + c, ih, iw]. */
export function conv2dBackwardWeightRef(x: FloatArray, dy: FloatArray, dw: FloatArray, p: Conv2dParams): void {
  const { N, C, H, W, K, R, S, OH, OW, strideH, strideW, padH, padW, dilationH, dilationW, groups } = p;
  const Cg = C / groups;
  const Kg = K / groups;
  for (let k = 0; k < K; k++) {
    const c0 = Math.floor(k / Kg) * Cg;
    for (let c = 0; c < Cg; c++) {
      for (let r = 0; r < R; r++) {
        for (let s = 0; s < S; s++) {
          let sum = 0;
          for (let n = 0; n < N; n++) {
            for (let oh = 0; oh < OH; oh++) {
              const ih = oh * strideH - padH + r * dilationH;
              if (ih < 0 || ih >= H) continue;
              for (let ow = 0; ow < OW; ow++) {
                const iw = ow * strideW - padW + s * dilationW;
                if (iw < 0 || iw >= W) continue;
                sum += dy[((n * K + k) * OH + oh) * OW + ow] * x[((n * C + c0 + c) * H + ih) * W + iw];
              }
            }
          }
          dw[((k * Cg + c) * R + r) * S + s] = sum;
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Fast versions.
//
// For image n and group g, with P = OH·OW output positions and the column matrix
//   col[(c·R + r)·S + s, oh·OW + ow] = x[n, c₀ + c, oh·sH − pH + r·dH, ow·sW − pW + s·dW]   ((Cg·R·S) × P),
// the three passes are gemms:
//   forward          y_g  (Kg × P)       = w_g (Kg × CgRS) · col
//   backward input   dcol (CgRS × P)     = w_gᵀ · dy_g,   then col2im scatters dcol back into dx
//   backward weight  dw_g (Kg × CgRS)   += dy_g · colᵀ
// A 1×1, stride-1, unpadded convolution whose output is the input's size has col = x itself, so no copy is made.
// col2im sums into a Float64 copy of the image group, so float32 callers still accumulate in doubles.
// ---------------------------------------------------------------------------------------------------------------

/**
 * Scratch memory, kept between calls only as a cache: each buffer grows to the largest size asked for and carries
 * nothing from one call to the next. `col`: the im2col / dcol matrix; `image`: col2im's sums for one image group.
 * `plane`, `tile`, `taps`: the depthwise
 * path's zero-bordered input plane, one row of its output, and its filter (or the filter's gradient sums).
 */
const scratch = {
  col: new Float64Array(0),
  image: new Float64Array(0),
  plane: new Float64Array(0),
  tile: new Float64Array(0),
  taps: new Float64Array(0),
};

function scratchBuffer(name: keyof typeof scratch, size: number): Float64Array {
  if (scratch[name].length < size) scratch[name] = new Float64Array(size);
  return scratch[name];
}

function isDepthwise(p: Conv2dParams): boolean {
  return p.groups === p.C && p.K === p.C;
}

function colIsInput(p: Conv2dParams): boolean {
  return p.R === 1 && p.S === 1 && p.strideH === 1 && p.strideW === 1 && p.padH === 0 && p.padW === 0 &&
    p.OH === p.H && p.OW === p.W;
}

/** Fast y = conv(x, w); same contract as `conv2dRef`. */
export function conv2d(x: FloatArray, w: FloatArray, y: FloatArray, p: Conv2dParams): void {
  if (isDepthwise(p)) return depthwiseForward(x, w, y, p);
  const { N, C, H, W, K, R, S, OH, OW, groups } = p;
  const Cg = C / groups, Kg = K / groups;
  const P = OH * OW, CRS = Cg * R * S;
  const direct = colIsInput(p);
  const col = scratchBuffer('col', direct ? 0 : CRS * P);
  const mm = { M: Kg, N: P, K: CRS, transA: false, transB: false, accumulate: false };
  for (let n = 0; n < N; n++) {
    for (let g = 0; g < groups; g++) {
      const xStart = (n * C + g * Cg) * H * W;
      const yStart = (n * K + g * Kg) * P;
      if (direct) {
        gemm(mm, w, g * Kg * CRS, x, xStart, y, yStart);
      } else {
        im2col(x, xStart, col, p);
        gemm(mm, w, g * Kg * CRS, col, 0, y, yStart);
      }
    }
  }
}

/** Fast dx = transposed conv of dy with w; same contract as `conv2dBackwardInputRef`. */
export function conv2dBackwardInput(dy: FloatArray, w: FloatArray, dx: FloatArray, p: Conv2dParams): void {
  if (isDepthwise(p)) return depthwiseBackwardInput(dy, w, dx, p);
  const { N, C, H, W, K, R, S, OH, OW, groups } = p;
  const Cg = C / groups, Kg = K / groups;
  const P = OH * OW, CRS = Cg * R * S;
  const mm = { M: CRS, N: P, K: Kg, transA: true, transB: false, accumulate: false };
  if (colIsInput(p)) {
    for (let n = 0; n < N; n++) {
      for (let g = 0; g < groups; g++) {
        gemm(mm, w, g * Kg * CRS, dy, (n * K + g * Kg) * P, dx, (n * C + g * Cg) * H * W);
      }
    }
    return;
  }
  const dcol = scratchBuffer('col', CRS * P);
  const image = scratchBuffer('image', Cg * H * W);
  for (let n = 0; n < N; n++) {
    for (let g = 0; g < groups; g++) {
      gemm(mm, w, g * Kg * CRS, dy, (n * K + g * Kg) * P, dcol, 0);
      col2im(dcol, image, p);
      const dxStart = (n * C + g * Cg) * H * W;
      for (let i = 0; i < Cg * H * W; i++) dx[dxStart + i] = image[i];
    }
  }
}

/** Fast dw = ∂⟨y, dy⟩/∂w; same contract as `conv2dBackwardWeightRef`. */
export function conv2dBackwardWeight(x: FloatArray, dy: FloatArray, dw: FloatArray, p: Conv2dParams): void {
  if (isDepthwise(p)) return depthwiseBackwardWeight(x, dy, dw, p);
  const { N, C, H, W, K, R, S, OH, OW, groups } = p;
  const Cg = C / groups, Kg = K / groups;
  const P = OH * OW, CRS = Cg * R * S;
  const direct = colIsInput(p);
  const col = scratchBuffer('col', direct ? 0 : CRS * P);
  dw.fill(0, 0, K * CRS);
  const mm = { M: Kg, N: CRS, K: P, transA: false, transB: true, accumulate: true };
  for (let n = 0; n < N; n++) {
    for (let g = 0; g < groups; g++) {
      const xStart = (n * C + g * Cg) * H * W;
      const dyStart = (n * K + g * Kg) * P;
      if (direct) {
        gemm(mm, dy, dyStart, x, xStart, dw, g * Kg * CRS);
      } else {
        im2col(x, xStart, col, p);
        gemm(mm, dy, dyStart, col, 0, dw, g * Kg * CRS);
      }
    }
  }
}

/**
 * The outputs o ∈ [0, outSize) whose input position o·stride + offset lies in [0, inSize) form one interval
 * [lo, hi). For a filter tap r, offset = r·dilation − pad, and outside the interval the tap reads padding.
 */
function validRange(offset: number, stride: number, inSize: number, outSize: number): [number, number] {
  const lo = Math.max(0, Math.ceil(-offset / stride));
  const hi = Math.min(outSize, Math.ceil((inSize - offset) / stride));
  return [lo, Math.max(lo, hi)];
}

/** col[(c·R + r)·S + s, oh·OW + ow] = x[xStart + c·H·W + ih·W + iw], 0 where (ih, iw) is padding. */
function im2col(x: FloatArray, xStart: number, col: Float64Array, p: Conv2dParams): void {
  const { C, H, W, R, S, OH, OW, strideH, strideW, padH, padW, dilationH, dilationW, groups } = p;
  const Cg = C / groups;
  const P = OH * OW;
  let row = 0;
  for (let c = 0; c < Cg; c++) {
    const plane = xStart + c * H * W;
    for (let r = 0; r < R; r++) {
      const [ohLo, ohHi] = validRange(r * dilationH - padH, strideH, H, OH);
      for (let s = 0; s < S; s++, row++) {
        const [owLo, owHi] = validRange(s * dilationW - padW, strideW, W, OW);
        const rowStart = row * P;
        col.fill(0, rowStart, rowStart + ohLo * OW);
        for (let oh = ohLo; oh < ohHi; oh++) {
          const out = rowStart + oh * OW;
          const src = plane + (oh * strideH - padH + r * dilationH) * W - padW + s * dilationW;
          for (let ow = 0; ow < owLo; ow++) col[out + ow] = 0;
          for (let ow = owLo; ow < owHi; ow++) col[out + ow] = x[src + ow * strideW];
          for (let ow = owHi; ow < OW; ow++) col[out + ow] = 0;
        }
        col.fill(0, rowStart + ohHi * OW, rowStart + P);
      }
    }
  }
}

/** The adjoint of im2col: image[c·H·W + ih·W + iw] = Σ dcol[(c·R + r)·S + s, oh·OW + ow] over the taps reading it. */
function col2im(dcol: Float64Array, image: Float64Array, p: Conv2dParams): void {
  const { C, H, W, R, S, OH, OW, strideH, strideW, padH, padW, dilationH, dilationW, groups } = p;
  const Cg = C / groups;
  const P = OH * OW;
  image.fill(0, 0, Cg * H * W);
  let row = 0;
  for (let c = 0; c < Cg; c++) {
    const plane = c * H * W;
    for (let r = 0; r < R; r++) {
      const [ohLo, ohHi] = validRange(r * dilationH - padH, strideH, H, OH);
      for (let s = 0; s < S; s++, row++) {
        const [owLo, owHi] = validRange(s * dilationW - padW, strideW, W, OW);
        for (let oh = ohLo; oh < ohHi; oh++) {
          const src = row * P + oh * OW;
          const dst = plane + (oh * strideH - padH + r * dilationH) * W - padW + s * dilationW;
          for (let ow = owLo; ow < owHi; ow++) image[dst + ow * strideW] += dcol[src + ow];
        }
      }
    }
  }
}

// Depthwise (G = C = K): each channel is convolved with its own R×S filter. Each (image, channel) plane is first
// copied into a zero-bordered Float64 plane, so the inner loops need no bounds tests, read one array type and sum
// in doubles. A register tile of 8 outputs along a row (forward) or of 8 filter taps (backward weight) reuses
// each load 8 times; the plane is made wide enough that a tile running past the row's end reads zeros, and the
// extra lanes are dropped. The backward input is the same correlation, run over dy spread onto a plane with the
// filter flipped.

const TILE = 8;

/**
 * Zeroes dst (dstH × dstW) and places src[srcStart + i·srcW + j] (a srcH × srcW plane) at
 * dst[(offH + i·stepH)·dstW + offW + j·stepW], dropping whatever falls outside dst.
 */
function embedPlane(
  src: FloatArray, srcStart: number, srcH: number, srcW: number,
  dst: Float64Array, dstH: number, dstW: number, offH: number, offW: number, stepH: number, stepW: number,
): void {
  dst.fill(0, 0, dstH * dstW);
  const [iLo, iHi] = validRange(offH, stepH, dstH, srcH);
  const [jLo, jHi] = validRange(offW, stepW, dstW, srcW);
  for (let i = iLo; i < iHi; i++) {
    const from = srcStart + i * srcW;
    const to = (offH + i * stepH) * dstW + offW;
    for (let j = jLo; j < jHi; j++) dst[to + j * stepW] = src[from + j];
  }
}

/** taps[r·S + s] = w[c, 0, r, s], or w[c, 0, R−1−r, S−1−s] when flipped. */
function loadTaps(w: FloatArray, c: number, R: number, S: number, flipped: boolean, taps: Float64Array): void {
  const start = c * R * S;
  for (let i = 0; i < R * S; i++) taps[i] = w[start + (flipped ? R * S - 1 - i : i)];
}

/** Positions of the input read along one axis by outSize outputs: the last output reads (out−1)·stride + (k−1)·d. */
function readExtent(outSize: number, stride: number, kernel: number, dilation: number): number {
  return Math.max(0, (outSize - 1) * stride + (kernel - 1) * dilation + 1);
}

/** A correlation with an R×S filter dilated by (dH, dW), placed every (stepH, stepW), giving OH × OW outputs. */
interface PlaneShape { R: number; S: number; dH: number; dW: number; stepH: number; stepW: number; OH: number; OW: number }

/** The zero-bordered plane a correlation reads (planeH × planeW) and its output row width rounded up to tiles. */
function planeSizes(g: PlaneShape) {
  const tileW = Math.ceil(g.OW / TILE) * TILE;
  return {
    planeH: readExtent(g.OH, g.stepH, g.R, g.dH),
    planeW: readExtent(tileW, g.stepW, g.S, g.dW),
    tileW,
  };
}

/**
 * out[outStart + o·OW + q] = Σ_{r,s} taps[r·S + s] · plane[(o·stepH + r·dH)·planeW + q·stepW + s·dW]
 * for o < OH, q < OW. A row's sums (tileW ≥ OW of them) go to `row` first; the OW valid ones are then stored.
 */
function correlatePlane(
  plane: Float64Array, planeW: number, taps: Float64Array, g: PlaneShape, tileW: number, row: Float64Array,
  out: FloatArray, outStart: number,
): void {
  const { R, S, dH, dW, stepH, stepW, OH, OW } = g;
  const step2 = 2 * stepW, step3 = 3 * stepW, step4 = 4 * stepW;
  const step5 = 5 * stepW, step6 = 6 * stepW, step7 = 7 * stepW;
  for (let o = 0; o < OH; o++) {
    for (let q = 0; q < tileW; q += TILE) {
      let sum0 = 0, sum1 = 0, sum2 = 0, sum3 = 0, sum4 = 0, sum5 = 0, sum6 = 0, sum7 = 0;
      for (let r = 0, t = 0; r < R; r++) {
        let i = (o * stepH + r * dH) * planeW + q * stepW;
        for (let s = 0; s < S; s++, t++, i += dW) {
          const tap = taps[t];
          sum0 += tap * plane[i];
          sum1 += tap * plane[i + stepW];
          sum2 += tap * plane[i + step2];
          sum3 += tap * plane[i + step3];
          sum4 += tap * plane[i + step4];
          sum5 += tap * plane[i + step5];
          sum6 += tap * plane[i + step6];
          sum7 += tap * plane[i + step7];
        }
      }
      row[q] = sum0; row[q + 1] = sum1; row[q + 2] = sum2; row[q + 3] = sum3;
      row[q + 4] = sum4; row[q + 5] = sum5; row[q + 6] = sum6; row[q + 7] = sum7;
    }
    const rowOut = outStart + o * OW;
    for (let q = 0; q < OW; q++) out[rowOut + q] = row[q];
  }
}

/** y[n, c] = x[n, c] ⋆ w[c]: y[oh, ow] = Σ w[r, s]·xPad[oh·sH + r·dH, ow·sW + s·dW], xPad = x bordered by (pH, pW). */
function depthwiseForward(x: FloatArray, w: FloatArray, y: FloatArray, p: Conv2dParams): void {
  const { N, C, H, W, R, S, OH, OW, strideH, strideW, padH, padW, dilationH, dilationW } = p;
  const shape = { R, S, dH: dilationH, dW: dilationW, stepH: strideH, stepW: strideW, OH, OW };
  const { planeH, planeW, tileW } = planeSizes(shape);
  const plane = scratchBuffer('plane', planeH * planeW);
  const row = scratchBuffer('tile', tileW);
  const taps = scratchBuffer('taps', R * S);
  for (let c = 0; c < C; c++) {
    loadTaps(w, c, R, S, false, taps);
    for (let n = 0; n < N; n++) {
      embedPlane(x, (n * C + c) * H * W, H, W, plane, planeH, planeW, padH, padW, 1, 1);
      correlatePlane(plane, planeW, taps, shape, tileW, row, y, (n * C + c) * OH * OW);
    }
  }
}

/**
 * dx[ih, iw] = Σ w[r, s]·dy[oh, ow] over oh·sH − pH + r·dH = ih, ow·sW − pW + s·dW = iw. Spreading dy onto a plane
 * at (oh·sH + qH, ow·sW + qW), with qH = (R−1)·dH − pH and qW likewise, turns this into a stride-1 correlation
 * with the flipped filter: dx[ih, iw] = Σ w[R−1−r, S−1−s]·plane[ih + r·dH, iw + s·dW]. (For stride > 1 most of
 * the plane is zeros; depthwise convolutions are nearly always stride 1.)
 */
function depthwiseBackwardInput(dy: FloatArray, w: FloatArray, dx: FloatArray, p: Conv2dParams): void {
  const { N, C, H, W, R, S, OH, OW, strideH, strideW, padH, padW, dilationH, dilationW } = p;
  const shape = { R, S, dH: dilationH, dW: dilationW, stepH: 1, stepW: 1, OH: H, OW: W };
  const { planeH, planeW, tileW } = planeSizes(shape);
  const plane = scratchBuffer('plane', planeH * planeW);
  const row = scratchBuffer('tile', tileW);
  const taps = scratchBuffer('taps', R * S);
  const offH = (R - 1) * dilationH - padH;
  const offW = (S - 1) * dilationW - padW;
  for (let c = 0; c < C; c++) {
    loadTaps(w, c, R, S, true, taps);
    for (let n = 0; n < N; n++) {
      embedPlane(dy, (n * C + c) * OH * OW, OH, OW, plane, planeH, planeW, offH, offW, strideH, strideW);
      correlatePlane(plane, planeW, taps, shape, tileW, row, dx, (n * C + c) * H * W);
    }
  }
}

/**
 * dw[c, r, s] = Σ_{n, oh, ow} dy[n, c, oh, ow]·xPad[oh·sH + r·dH, ow·sW + s·dW]. Eight taps s … s+7 of a filter row
 * are summed at once, over a plane wide enough that taps past S read zeros.
 */
function depthwiseBackwardWeight(x: FloatArray, dy: FloatArray, dw: FloatArray, p: Conv2dParams): void {
  const { N, C, H, W, R, S, OH, OW, strideH, strideW, padH, padW, dilationH, dilationW } = p;
  const tapsW = Math.ceil(S / TILE) * TILE;
  const planeH = readExtent(OH, strideH, R, dilationH);
  const planeW = readExtent(OW, strideW, tapsW, dilationW);
  const plane = scratchBuffer('plane', planeH * planeW);
  const sums = scratchBuffer('taps', R * tapsW);
  const d2 = 2 * dilationW, d3 = 3 * dilationW, d4 = 4 * dilationW;
  const d5 = 5 * dilationW, d6 = 6 * dilationW, d7 = 7 * dilationW;
  for (let c = 0; c < C; c++) {
    sums.fill(0, 0, R * tapsW);
    for (let n = 0; n < N; n++) {
      embedPlane(x, (n * C + c) * H * W, H, W, plane, planeH, planeW, padH, padW, 1, 1);
      const dyPlane = (n * C + c) * OH * OW;
      for (let r = 0; r < R; r++) {
        for (let s = 0; s < tapsW; s += TILE) {
          let sum0 = 0, sum1 = 0, sum2 = 0, sum3 = 0, sum4 = 0, sum5 = 0, sum6 = 0, sum7 = 0;
          for (let oh = 0; oh < OH; oh++) {
            let i = (oh * strideH + r * dilationH) * planeW + s * dilationW;
            let g = dyPlane + oh * OW;
            for (let ow = 0; ow < OW; ow++, g++, i += strideW) {
              const grad = dy[g];
              sum0 += grad * plane[i];
              sum1 += grad * plane[i + dilationW];
              sum2 += grad * plane[i + d2];
              sum3 += grad * plane[i + d3];
              sum4 += grad * plane[i + d4];
              sum5 += grad * plane[i + d5];
              sum6 += grad * plane[i + d6];
              sum7 += grad * plane[i + d7];
            }
          }
          const t = r * tapsW + s;
          sums[t] += sum0; sums[t + 1] += sum1; sums[t + 2] += sum2; sums[t + 3] += sum3;
          sums[t + 4] += sum4; sums[t + 5] += sum5; sums[t + 6] += sum6; sums[t + 7] += sum7;
        }
      }
    }
    for (let r = 0; r < R; r++) {
      for (let s = 0; s < S; s++) dw[(c * R + r) * S + s] = sums[r * tapsW + s];
    }
  }
}
