/**
 * 2-D convolution on gpu.js (NCHW, cross-correlation as in PyTorch) and its two backward passes, dense or at
 * active sites. Reference twins: kernels/cpu/conv2d.ts (`conv2dRef`, `conv2dBackwardInputRef`,
 * `conv2dBackwardWeightRef`) and, with sites, kernels/cpu/active_conv.ts (`activeConv2d…Ref`).
 *
 *   y[n, k, oh, ow] = Σ_{c < C/G, r, s} w[k, c, r, s] · x[n, c₀(k) + c, oh·sH − pH + r·dH, ow·sW − pW + s·dW]
 *
 * with c₀(k) = ⌊k/(K/G)⌋·(C/G) and x read as 0 outside the input. Every pass is a gather, one thread per output
 * element looping over constant bounds (gpu.js has no atomics, so nothing scatters): forward over the C/G·R·S
 * window; backward input over the K/G·R·S taps that can reach its input element; backward weight over N·OH·OW.
 * Sites (flat output positions n·OH·OW + oh·OW + ow) arrive as a 0/1 mask of N·OH·OW floats: the forward
 * output is 0 off the sites, and the backward passes read dy only at sites (a branch, not a product, so that
 * a NaN or ∞ in dy off the sites is never read, as in the reference).
 * The backward-input pass is also the transposed convolution; OH and OW are given, never derived, so sizes
 * with output padding work. Left out: bias (an op adds it), tiling through shared memory (gpu.js has none).
 */
import type { Conv2dParams } from '../cpu/conv2d.ts';
import { fill } from './elementwise.ts';
import type { GpuArray, GpuIn, GpuRuntime, KernelThis } from './runtime.ts';

/** The kernel constants: the shape, the window geometry and whether a site mask applies (1) or not (0). */
function convConstants(p: Conv2dParams, masked: boolean): Record<string, number> {
  return {
    N: p.N, C: p.C, H: p.H, W: p.W, K: p.K, R: p.R, S: p.S, OH: p.OH, OW: p.OW,
    Cg: p.C / p.groups, Kg: p.K / p.groups, OHW: p.OH * p.OW, HW: p.H * p.W,
    sH: p.strideH, sW: p.strideW, pH: p.padH, pW: p.padW, dH: p.dilationH, dW: p.dilationW,
    masked: masked ? 1 : 0,
  };
}

/**
 * The site mask (N·OH·OW floats, 1 at each site), or a 1-element placeholder when every position counts
 * (the kernel then never reads it: gpu.js needs an argument for every parameter).
 */
function siteMask(p: Conv2dParams, sites: Int32Array | null): Float32Array {
  if (!sites) return new Float32Array([1]);
  const positions = p.N * p.OH * p.OW;
  const mask = new Float32Array(positions);
  for (const s of sites) {
    if (!(s >= 0 && s < positions)) throw new Error(`gpu conv2d: site ${s} outside the ${p.N}×${p.OH}×${p.OW} output positions`);
    mask[s] = 1;
  }
  return mask;
}

function checkParams(name: string, p: Conv2dParams): void {
  if (p.C % p.groups !== 0 || p.K % p.groups !== 0) throw new Error(`gpu ${name}: groups ${p.groups} must divide C ${p.C} and K ${p.K}`);
}

/** n elements of zeros (none when n is 0: gpu.js has no empty kernels). */
function zeros(rt: GpuRuntime, n: number): GpuArray {
  return n === 0 ? rt.adopt(new Float32Array(0), 0) : fill(rt, n, 0);
}

/** Thread (n, k, oh, ow) of y (N×K×OH×OW): the window sum, or 0 off the sites. */
const forwardKernel = function (this: KernelThis, x: number[], w: number[], mask: number[]): number {
  const nk = idiv(this.thread.x, this.constants.OHW);
  const pos = this.thread.x - nk * this.constants.OHW;
  const n = idiv(nk, this.constants.K);
  const k = nk - n * this.constants.K;
  if (this.constants.masked > 0) {
    if (mask[n * this.constants.OHW + pos] < 0.5) { return 0; }
  }
  const oh = idiv(pos, this.constants.OW);
  const ow = pos - oh * this.constants.OW;
  const c0 = idiv(k, this.constants.Kg) * this.constants.Cg;
  const ih0 = oh * this.constants.sH - this.constants.pH;
  const iw0 = ow * this.constants.sW - this.constants.pW;
  let sum = 0;
  for (let c = 0; c < this.constants.Cg; c++) {
    const xPlane = (n * this.constants.C + c0 + c) * this.constants.HW;
    const wBase = (k * this.constants.Cg + c) * this.constants.R;
    for (let r = 0; r < this.constants.R; r++) {
      const ih = ih0 + r * this.constants.dH;
      if (ih >= 0 && ih < this.constants.H) {
        for (let s = 0; s < this.constants.S; s++) {
          const iw = iw0 + s * this.constants.dW;
          if (iw >= 0 && iw < this.constants.W) {
            sum += w[(wBase + r) * this.constants.S + s] * x[xPlane + ih * this.constants.W + iw];
          }
        }
      }
    }
  }
  return sum;
};

/**
 * Thread (n, c, ih, iw) of dx (N×C×H×W): dx = Σ_{k ∈ group(c), r, s} w[k, c − c₀, r, s] · dy[n, k, oh, ow] over
 * the taps with oh·sH − pH + r·dH = ih and ow·sW − pW + s·dW = iw, i.e. oh = (ih + pH − r·dH)/sH where that is
 * a whole number in [0, OH) (likewise ow); with a mask, only (oh, ow) at sites.
 */
const backwardInputKernel = function (this: KernelThis, dy: number[], w: number[], mask: number[]): number {
  const nc = idiv(this.thread.x, this.constants.HW);
  const pos = this.thread.x - nc * this.constants.HW;
  const n = idiv(nc, this.constants.C);
  const c = nc - n * this.constants.C;
  const ih = idiv(pos, this.constants.W);
  const iw = pos - ih * this.constants.W;
  const g = idiv(c, this.constants.Cg);
  const cl = c - g * this.constants.Cg;
  const k0 = g * this.constants.Kg;
  let sum = 0;
  for (let kk = 0; kk < this.constants.Kg; kk++) {
    const k = k0 + kk;
    const dyPlane = (n * this.constants.K + k) * this.constants.OHW;
    const wBase = (k * this.constants.Cg + cl) * this.constants.R;
    for (let r = 0; r < this.constants.R; r++) {
      const th = ih + this.constants.pH - r * this.constants.dH;
      if (th >= 0) {
        const oh = idiv(th, this.constants.sH);
        if (oh * this.constants.sH === th && oh < this.constants.OH) {
          for (let s = 0; s < this.constants.S; s++) {
            const tw = iw + this.constants.pW - s * this.constants.dW;
            if (tw >= 0) {
              const ow = idiv(tw, this.constants.sW);
              if (ow * this.constants.sW === tw && ow < this.constants.OW) {
                let live = 1;
                if (this.constants.masked > 0) {
                  live = mask[n * this.constants.OHW + oh * this.constants.OW + ow];
                }
                if (live > 0.5) {
                  sum += w[(wBase + r) * this.constants.S + s] * dy[dyPlane + oh * this.constants.OW + ow];
                }
              }
            }
          }
        }
      }
    }
  }
  return sum;
};

/**
 * Thread (k, c, r, s) of dw (K×C/G×R×S): dw = Σ_{n, oh, ow} dy[n, k, oh, ow] · x[n, c₀(k) + c, ih, iw] over the
 * taps inside the input; with a mask, only at sites.
 */
const backwardWeightKernel = function (this: KernelThis, x: number[], dy: number[], mask: number[]): number {
  const RS = this.constants.R * this.constants.S;
  const kc = idiv(this.thread.x, RS);
  const rs = this.thread.x - kc * RS;
  const k = idiv(kc, this.constants.Cg);
  const c = kc - k * this.constants.Cg;
  const r = idiv(rs, this.constants.S);
  const s = rs - r * this.constants.S;
  const c0 = idiv(k, this.constants.Kg) * this.constants.Cg;
  const rOff = r * this.constants.dH - this.constants.pH;
  const sOff = s * this.constants.dW - this.constants.pW;
  let sum = 0;
  for (let n = 0; n < this.constants.N; n++) {
    const xPlane = (n * this.constants.C + c0 + c) * this.constants.HW;
    const dyPlane = (n * this.constants.K + k) * this.constants.OHW;
    for (let oh = 0; oh < this.constants.OH; oh++) {
      const ih = oh * this.constants.sH + rOff;
      if (ih >= 0 && ih < this.constants.H) {
        for (let ow = 0; ow < this.constants.OW; ow++) {
          const iw = ow * this.constants.sW + sOff;
          if (iw >= 0 && iw < this.constants.W) {
            let live = 1;
            if (this.constants.masked > 0) {
              live = mask[n * this.constants.OHW + oh * this.constants.OW + ow];
            }
            if (live > 0.5) {
              sum += dy[dyPlane + oh * this.constants.OW + ow] * x[xPlane + ih * this.constants.W + iw];
            }
          }
        }
      }
    }
  }
  return sum;
};

/** y (N×K×OH×OW) = conv(x (N×C×H×W), w (K×C/G×R×S)); with sites, 0 at every other output position. */
export function conv2d(rt: GpuRuntime, x: GpuIn, w: GpuIn, p: Conv2dParams, sites: Int32Array | null): GpuArray {
  checkParams('conv2d', p);
  const n = p.N * p.K * p.OH * p.OW;
  if (n === 0 || (sites && sites.length === 0) || p.C * p.R * p.S === 0) return zeros(rt, n);
  return rt.run('conv2d', forwardKernel, n, convConstants(p, !!sites), [x, w, siteMask(p, sites)]);
}

/** dx (N×C×H×W) from dy (N×K×OH×OW), read only at sites when given: the transposed convolution of dy with w. */
export function conv2dBackwardInput(rt: GpuRuntime, dy: GpuIn, w: GpuIn, p: Conv2dParams, sites: Int32Array | null): GpuArray {
  checkParams('conv2dBackwardInput', p);
  const n = p.N * p.C * p.H * p.W;
  if (n === 0 || (sites && sites.length === 0) || p.K * p.OH * p.OW * p.R * p.S === 0) return zeros(rt, n);
  return rt.run('conv2dBackwardInput', backwardInputKernel, n, convConstants(p, !!sites), [dy, w, siteMask(p, sites)]);
}

/** dw (K×C/G×R×S) from x (N×C×H×W) and dy (N×K×OH×OW), dy read only at sites when given. */
export function conv2dBackwardWeight(rt: GpuRuntime, x: GpuIn, dy: GpuIn, p: Conv2dParams, sites: Int32Array | null): GpuArray {
  checkParams('conv2dBackwardWeight', p);
  const n = p.K * (p.C / p.groups) * p.R * p.S;
  if (n === 0 || (sites && sites.length === 0) || p.N * p.OH * p.OW * p.H * p.W === 0) return zeros(rt, n);
  return rt.run('conv2dBackwardWeight', backwardWeightKernel, n, convConstants(p, !!sites), [x, dy, siteMask(p, sites)]);
}
