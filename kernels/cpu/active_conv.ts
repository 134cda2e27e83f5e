/**
 * Active-site convolution: the convolution evaluated only at a list of output positions ("sites"), zero at
 * every other output — exactly what SparK's masked dense conv computes, at a cost proportional to the number of
 * sites instead of the whole map. Sites are flat output indices n·OH·OW + oh·OW + ow.
 *
 *   forward         y[n,k,site] = Σ w[k,c,r,s]·x[n,c,ih,iw] at sites, 0 elsewhere
 *   backward input  dx = Σ over sites only (dy is read only at sites)
 *   backward weight dw = Σ over sites only
 *
 * The general path gathers the sites' receptive fields into an im2col block (a bounded number of sites at a
 * time) and runs the fast gemm on it; depthwise convolutions (G = C = K) take a direct loop. The reference twins
 * are the dense reference kernels restricted to the sites (activeConv2dRef & co.).
 * Left out: bias (the op adds it at the sites), threads.
 */
import type { FloatArray } from '../../src/tensor/dtype.ts';
import { gemm } from './gemm.ts';
import { conv2dRef, conv2dBackwardInputRef, conv2dBackwardWeightRef, type Conv2dParams } from './conv2d.ts';

/** Sites per im2col block: bounds the scratch to BLOCK·(C/G)·R·S doubles. */
const BLOCK = 512;

/** Reusable scratch (a cache of memory, not state): grown on demand. */
const scratch = { cols: new Float64Array(0), rows: new Float64Array(0), acc: new Float64Array(0) };
let tapScratch = new Int32Array(0);
function tapBuffer(size: number): Int32Array {
  if (tapScratch.length < size) tapScratch = new Int32Array(size);
  return tapScratch;
}
function buffer(name: keyof typeof scratch, size: number): Float64Array {
  if (scratch[name].length < size) scratch[name] = new Float64Array(size);
  return scratch[name];
}

/**
 * Where each tap of sites[from, to) of group g reads the input: taps[o] is the flat index into x of column
 * j = (c, r, s) of site row v (o = (v − from)·span + j), or −1 where the tap falls in the padding.
 * Gathering and scattering then share this one walk over the receptive fields.
 */
function fieldTaps(p: Conv2dParams, sites: Int32Array, from: number, to: number, g: number, taps: Int32Array): void {
  const { C, H, W, R, S, OH, OW, strideH, strideW, padH, padW, dilationH, dilationW, groups } = p;
  const Cg = C / groups, span = Cg * R * S, plane = OH * OW;
  for (let v = from; v < to; v++) {
    const site = sites[v];
    const n = Math.floor(site / plane), pos = site - n * plane;
    const oh = Math.floor(pos / OW), ow = pos - oh * OW;
    let o = (v - from) * span;
    for (let c = 0; c < Cg; c++) {
      const xBase = (n * C + g * Cg + c) * H;
      for (let r = 0; r < R; r++) {
        const ih = oh * strideH - padH + r * dilationH;
        const inside = ih >= 0 && ih < H;
        const rowBase = (xBase + ih) * W;
        for (let s = 0; s < S; s++, o++) {
          const iw = ow * strideW - padW + s * dilationW;
          taps[o] = inside && iw >= 0 && iw < W ? rowBase + iw : -1;
        }
      }
    }
  }
}

/** cols[o] = x at tap o (0 in the padding): the receptive fields, a row per site. */
function gatherFields(x: FloatArray, taps: Int32Array, n: number, cols: Float64Array): void {
  for (let o = 0; o < n; o++) cols[o] = taps[o] >= 0 ? x[taps[o]] : 0;
}

/** The adjoint: dcols scatter-added back onto the input positions they were read from. */
function scatterFields(dcols: Float64Array, taps: Int32Array, n: number, dx: Float64Array): void {
  for (let o = 0; o < n; o++) if (taps[o] >= 0) dx[taps[o]] += dcols[o];
}

/** Copy dy at sites[from, to) for the output channels of group g into rows (row per site). */
function gatherOutputs(dy: FloatArray, p: Conv2dParams, sites: Int32Array, from: number, to: number, g: number, rows: Float64Array): void {
  const Kg = p.K / p.groups, plane = p.OH * p.OW;
  for (let v = from; v < to; v++) {
    const n = Math.floor(sites[v] / plane), pos = sites[v] - n * plane;
    const base = (n * p.K + g * Kg) * plane + pos;
    for (let k = 0; k < Kg; k++) rows[(v - from) * Kg + k] = dy[base + k * plane];
  }
}

function isDepthwise(p: Conv2dParams): boolean {
  return p.groups === p.C && p.groups === p.K;
}

export function activeConv2d(x: FloatArray, w: FloatArray, y: FloatArray, p: Conv2dParams, sites: Int32Array): void {
  y.fill(0);
  if (isDepthwise(p)) return depthwiseActive(x, w, y, p, sites, 'forward');
  const Kg = p.K / p.groups, span = (p.C / p.groups) * p.R * p.S, plane = p.OH * p.OW;
  const cols = buffer('cols', BLOCK * span), rows = buffer('rows', BLOCK * Kg);
  for (let g = 0; g < p.groups; g++) {
    for (let from = 0; from < sites.length; from += BLOCK) {
      const to = Math.min(sites.length, from + BLOCK), m = to - from;
      const taps = tapBuffer(m * span);
      fieldTaps(p, sites, from, to, g, taps);
      gatherFields(x, taps, m * span, cols);
      // rows (m × Kg) = cols (m × span) · w_gᵀ (span × Kg)
      gemm({ M: m, N: Kg, K: span, transA: false, transB: true, accumulate: false }, cols, 0, w, g * Kg * span, rows, 0);
      for (let v = from; v < to; v++) {
        const n = Math.floor(sites[v] / plane), pos = sites[v] - n * plane;
        const base = (n * p.K + g * Kg) * plane + pos;
        for (let k = 0; k < Kg; k++) y[base + k * plane] = rows[(v - from) * Kg + k];
      }
    }
  }
}

export function activeConv2dBackwardInput(dy: FloatArray, w: FloatArray, dx: FloatArray, p: Conv2dParams, sites: Int32Array): void {
  const acc = buffer('acc', dx.length);
  acc.fill(0, 0, dx.length);
  if (isDepthwise(p)) {
    depthwiseActive(dy, w, acc, p, sites, 'input');
  } else {
    const Kg = p.K / p.groups, span = (p.C / p.groups) * p.R * p.S;
    const cols = buffer('cols', BLOCK * span), rows = buffer('rows', BLOCK * Kg);
    for (let g = 0; g < p.groups; g++) {
      for (let from = 0; from < sites.length; from += BLOCK) {
        const to = Math.min(sites.length, from + BLOCK), m = to - from;
        gatherOutputs(dy, p, sites, from, to, g, rows);
        // dcols (m × span) = rows (m × Kg) · w_g (Kg × span)
        gemm({ M: m, N: span, K: Kg, transA: false, transB: false, accumulate: false }, rows, 0, w, g * Kg * span, cols, 0);
        const taps = tapBuffer(m * span);
        fieldTaps(p, sites, from, to, g, taps);
        scatterFields(cols, taps, m * span, acc);
      }
    }
  }
  for (let i = 0; i < dx.length; i++) dx[i] = acc[i];
}

export function activeConv2dBackwardWeight(x: FloatArray, dy: FloatArray, dw: FloatArray, p: Conv2dParams, sites: Int32Array): void {
  dw.fill(0);
  if (isDepthwise(p)) return depthwiseActive(x, dy, dw, p, sites, 'weight');
  const Kg = p.K / p.groups, span = (p.C / p.groups) * p.R * p.S;
  const cols = buffer('cols', BLOCK * span), rows = buffer('rows', BLOCK * Kg);
  for (let g = 0; g < p.groups; g++) {
    for (let from = 0; from < sites.length; from += BLOCK) {
      const to = Math.min(sites.length, from + BLOCK), m = to - from;
      const taps = tapBuffer(m * span);
      fieldTaps(p, sites, from, to, g, taps);
      gatherFields(x, taps, m * span, cols);
      gatherOutputs(dy, p, sites, from, to, g, rows);
      // dw_g (Kg × span) += rowsᵀ (Kg × m) · cols (m × span)
      gemm({ M: Kg, N: span, K: m, transA: true, transB: false, accumulate: true }, rows, 0, cols, 0, dw, g * Kg * span);
    }
  }
}

/**
 * Depthwise (one input channel per output channel) at the sites, by direct loops. One routine, three uses:
 *   'forward': out = y,  a = x,  b = w      'input': out = dx, a = dy, b = w      'weight': out = dw, a = x, b = dy
 */
function depthwiseActive(a: FloatArray, b: FloatArray, out: FloatArray | Float64Array, p: Conv2dParams, sites: Int32Array, pass: 'forward' | 'input' | 'weight'): void {
  const { C, H, W, R, S, OH, OW, strideH, strideW, padH, padW, dilationH, dilationW } = p;
  const plane = OH * OW;
  for (let c = 0; c < C; c++) {
    for (const site of sites) {
      const n = Math.floor(site / plane), pos = site - n * plane;
      const oh = Math.floor(pos / OW), ow = pos - oh * OW;
      const xPlane = (n * C + c) * H * W;
      const yAt = (n * C + c) * plane + pos;
      let sum = 0;
      for (let r = 0; r < R; r++) {
        const ih = oh * strideH - padH + r * dilationH;
        if (ih < 0 || ih >= H) continue;
        for (let s = 0; s < S; s++) {
          const iw = ow * strideW - padW + s * dilationW;
          if (iw < 0 || iw >= W) continue;
          const xi = xPlane + ih * W + iw, wi = (c * R + r) * S + s;
          if (pass === 'forward') sum += b[wi] * a[xi];
          else if (pass === 'input') out[xi] += b[wi] * a[yAt];
          else out[wi] += b[yAt] * a[xi];
        }
      }
      if (pass === 'forward') out[yAt] = sum;
    }
  }
}

// ---- reference twins: the dense reference kernels, restricted to the sites

function siteMask(p: Conv2dParams, sites: Int32Array): Uint8Array {
  const m = new Uint8Array(p.N * p.OH * p.OW);
  for (const s of sites) m[s] = 1;
  return m;
}

/** Zero every output channel at positions that are not sites (in place). */
function keepSites(y: FloatArray, p: Conv2dParams, mask: Uint8Array): void {
  const plane = p.OH * p.OW;
  for (let n = 0; n < p.N; n++) {
    for (let k = 0; k < p.K; k++) {
      for (let i = 0; i < plane; i++) if (!mask[n * plane + i]) y[(n * p.K + k) * plane + i] = 0;
    }
  }
}

export function activeConv2dRef(x: FloatArray, w: FloatArray, y: FloatArray, p: Conv2dParams, sites: Int32Array): void {
  conv2dRef(x, w, y, p);
  keepSites(y, p, siteMask(p, sites));
}

export function activeConv2dBackwardInputRef(dy: FloatArray, w: FloatArray, dx: FloatArray, p: Conv2dParams, sites: Int32Array): void {
  const dySites = dy.slice();
  keepSites(dySites, p, siteMask(p, sites));
  conv2dBackwardInputRef(dySites, w, dx, p);
}

export function activeConv2dBackwardWeightRef(x: FloatArray, dy: FloatArray, dw: FloatArray, p: Conv2dParams, sites: Int32Array): void {
  const dySites = dy.slice();
  keepSites(dySites, p, siteMask(p, sites));
  conv2dBackwardWeightRef(x, dySites, dw, p);
}
