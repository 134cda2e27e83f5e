/**
 * 2-D pooling on gpu.js (NCHW) with PyTorch's CPU semantics: max pool with argmax (and dilation), average pool
 * (countIncludePad, divisorOverride), adaptive average pool, and their backward passes.
 * Reference twin: kernels/cpu/pool.ts (windows, ties, NaN and divisors exactly as documented there).
 * Each pass is a gather, one thread per output element looping over constant bounds: the forward passes over
 * their window, the backward passes over the output windows that can contain their input element (gpu.js has
 * no atomics to scatter with). The backward sums run in the reference's order (outputs row-major), in float32.
 * argmax is a float flat index ih·W + iw within each (n, c) plane (exact: planes stay below 2^24 elements).
 * Left out: adaptive max pool; in the max-pool backward, windows with no input tap (only a dilated window on
 * an input smaller than its span can fall wholly in the padding: the forward then gives −∞ and the reference's
 * index, which points past the window, even past the plane, and the backward, a gather over each window's own
 * taps, drops that gradient where the reference adds it there).
 */
import type { AdaptivePool2dParams, AvgPool2dParams, Pool2dParams } from '../cpu/pool.ts';
import { fill } from './elementwise.ts';
import type { GpuArray, GpuIn, GpuRuntime, KernelThis } from './runtime.ts';

/** n elements of zeros (none when n is 0: gpu.js has no empty kernels). */
function zeros(rt: GpuRuntime, n: number): GpuArray {
  return n === 0 ? rt.adopt(new Float32Array(0), 0) : fill(rt, n, 0);
}

function empty(rt: GpuRuntime): GpuArray {
  return rt.adopt(new Float32Array(0), 0);
}

function poolConstants(p: Pool2dParams): Record<string, number> {
  return {
    H: p.H, W: p.W, OH: p.OH, OW: p.OW, HW: p.H * p.W, OHW: p.OH * p.OW, kH: p.kH, kW: p.kW,
    sH: p.strideH, sW: p.strideW, pH: p.padH, pW: p.padW, dH: p.dilationH, dW: p.dilationW,
  };
}

// ---- max pool

/**
 * Thread (plane, oh, ow): the max over the taps ih = oh·sH − pH + i·dH, iw = ow·sW − pW + j·dW inside the input,
 * scanned row-major with a strict '>' (a tie keeps the first), except that a NaN always takes over; padding
 * is −∞. The index starts at the first tap inside the input, as the reference's stepped window start.
 * Returns the value (constants.index = 0) or its flat index in the plane (1): one source, two compiled kernels.
 */
const maxPoolKernel = function (this: KernelThis, x: number[], inf: number): number {
  const plane = idiv(this.thread.x, this.constants.OHW);
  const pos = this.thread.x - plane * this.constants.OHW;
  const oh = idiv(pos, this.constants.OW);
  const ow = pos - oh * this.constants.OW;
  const hs = oh * this.constants.sH - this.constants.pH;
  const ws = ow * this.constants.sW - this.constants.pW;
  let ih0 = hs;
  if (hs < 0) { ih0 = hs + idiv(this.constants.dH - 1 - hs, this.constants.dH) * this.constants.dH; }
  let iw0 = ws;
  if (ws < 0) { iw0 = ws + idiv(this.constants.dW - 1 - ws, this.constants.dW) * this.constants.dW; }
  const xPlane = plane * this.constants.HW;
  let best = -inf;
  let bestIndex = ih0 * this.constants.W + iw0;
  for (let i = 0; i < this.constants.kH; i++) {
    const ih = hs + i * this.constants.dH;
    if (ih >= 0 && ih < this.constants.H) {
      for (let j = 0; j < this.constants.kW; j++) {
        const iw = ws + j * this.constants.dW;
        if (iw >= 0 && iw < this.constants.W) {
          const v = x[xPlane + ih * this.constants.W + iw];
          if (v > best || v !== v) {
            best = v;
            bestIndex = ih * this.constants.W + iw;
          }
        }
      }
    }
  }
  if (this.constants.index > 0) { return bestIndex; }
  return best;
};

/** y (N×C×OH×OW) and argmax (same shape, flat indices within each plane) of x (N×C×H×W). */
export function maxPool2d(rt: GpuRuntime, x: GpuIn, p: Pool2dParams): { y: GpuArray; argmax: GpuArray } {
  const n = p.N * p.C * p.OH * p.OW;
  if (n === 0) return { y: empty(rt), argmax: empty(rt) };
  const c = poolConstants(p);
  const y = rt.run('maxPool2d', maxPoolKernel, n, { ...c, index: 0 }, [x, Infinity]);
  const argmax = rt.run('maxPool2d', maxPoolKernel, n, { ...c, index: 1 }, [x, Infinity]);
  return { y, argmax };
}

/**
 * Thread (plane, ih, iw) of dx: Σ dy[plane, oh, ow] over the outputs whose argmax is ih·W + iw. Only windows
 * that have (ih, iw) as a tap can point there: oh = (ih + pH − i·dH)/sH a whole number in [0, OH) for some
 * i < kH (likewise ow), each window met once. i runs down so that oh, and then ow, run up: the reference's order.
 */
const maxPoolBackwardKernel = function (this: KernelThis, dy: number[], argmax: number[]): number {
  const plane = idiv(this.thread.x, this.constants.HW);
  const pos = this.thread.x - plane * this.constants.HW;
  const ih = idiv(pos, this.constants.W);
  const iw = pos - ih * this.constants.W;
  const yPlane = plane * this.constants.OHW;
  let sum = 0;
  for (let ii = 0; ii < this.constants.kH; ii++) {
    const th = ih + this.constants.pH - (this.constants.kH - 1 - ii) * this.constants.dH;
    if (th >= 0) {
      const oh = idiv(th, this.constants.sH);
      if (oh * this.constants.sH === th && oh < this.constants.OH) {
        for (let jj = 0; jj < this.constants.kW; jj++) {
          const tw = iw + this.constants.pW - (this.constants.kW - 1 - jj) * this.constants.dW;
          if (tw >= 0) {
            const ow = idiv(tw, this.constants.sW);
            if (ow * this.constants.sW === tw && ow < this.constants.OW) {
              const at = yPlane + oh * this.constants.OW + ow;
              if (argmax[at] === pos) {
                sum += dy[at];
              }
            }
          }
        }
      }
    }
  }
  return sum;
};

/** dx (N×C×H×W): each dy (N×C×OH×OW) added at its argmax, as the reference; argmax as maxPool2d gives it. */
export function maxPool2dBackward(rt: GpuRuntime, dy: GpuIn, argmax: GpuIn, p: Pool2dParams): GpuArray {
  const n = p.N * p.C * p.H * p.W;
  if (n === 0 || p.OH * p.OW === 0) return zeros(rt, n);
  return rt.run('maxPool2dBackward', maxPoolBackwardKernel, n, poolConstants(p), [dy, argmax]);
}

// ---- average pool

function avgConstants(p: AvgPool2dParams): Record<string, number> {
  return {
    ...poolConstants(p), includePad: p.countIncludePad ? 1 : 0,
    override: p.divisorOverride === undefined ? 0 : 1, divisor: p.divisorOverride ?? 0,
  };
}

/**
 * Thread (plane, oh, ow): the window [h₀, h₀ + kH) × [w₀, w₀ + kW), h₀ = oh·sH − pH, clipped first to the padded
 * input (giving the size counted with countIncludePad), then to the input; y = Σ x / divisor over it, 0 when
 * it holds no input.
 */
const avgPoolKernel = function (this: KernelThis, x: number[]): number {
  const plane = idiv(this.thread.x, this.constants.OHW);
  const pos = this.thread.x - plane * this.constants.OHW;
  const oh = idiv(pos, this.constants.OW);
  const ow = pos - oh * this.constants.OW;
  let h0 = oh * this.constants.sH - this.constants.pH;
  let w0 = ow * this.constants.sW - this.constants.pW;
  let h1 = Math.min(h0 + this.constants.kH, this.constants.H + this.constants.pH);
  let w1 = Math.min(w0 + this.constants.kW, this.constants.W + this.constants.pW);
  const padded = (h1 - h0) * (w1 - w0);
  h0 = Math.max(h0, 0);
  w0 = Math.max(w0, 0);
  h1 = Math.min(h1, this.constants.H);
  w1 = Math.min(w1, this.constants.W);
  if (h0 >= h1 || w0 >= w1) { return 0; }
  let divisor = (h1 - h0) * (w1 - w0);
  if (this.constants.includePad > 0) { divisor = padded; }
  if (this.constants.override > 0) { divisor = this.constants.divisor; }
  const xPlane = plane * this.constants.HW;
  let sum = 0;
  for (let i = 0; i < this.constants.kH; i++) {
    const ih = h0 + i;
    if (ih < h1) {
      for (let j = 0; j < this.constants.kW; j++) {
        const iw = w0 + j;
        if (iw < w1) {
          sum += x[xPlane + ih * this.constants.W + iw];
        }
      }
    }
  }
  return sum / divisor;
};

/** y (N×C×OH×OW) = window means of x (N×C×H×W). */
export function avgPool2d(rt: GpuRuntime, x: GpuIn, p: AvgPool2dParams): GpuArray {
  const n = p.N * p.C * p.OH * p.OW;
  if (n === 0) return empty(rt);
  return rt.run('avgPool2d', avgPoolKernel, n, avgConstants(p), [x]);
}

/**
 * Thread (plane, ih, iw) of dx: Σ dy[plane, oh, ow] / divisor(oh, ow) over the windows holding (ih, iw), those
 * with oh·sH − pH = ih − i for some i < kH (likewise ow): clipping never removes an input element. i runs
 * down so that oh runs up, as in the reference; each window's divisor as in the forward pass.
 */
const avgPoolBackwardKernel = function (this: KernelThis, dy: number[]): number {
  const plane = idiv(this.thread.x, this.constants.HW);
  const pos = this.thread.x - plane * this.constants.HW;
  const ih = idiv(pos, this.constants.W);
  const iw = pos - ih * this.constants.W;
  const yPlane = plane * this.constants.OHW;
  let sum = 0;
  for (let ii = 0; ii < this.constants.kH; ii++) {
    const th = ih + this.constants.pH - (this.constants.kH - 1 - ii);
    if (th >= 0) {
      const oh = idiv(th, this.constants.sH);
      if (oh * this.constants.sH === th && oh < this.constants.OH) {
        const hs = oh * this.constants.sH - this.constants.pH;
        const he = Math.min(hs + this.constants.kH, this.constants.H + this.constants.pH);
        const hPadded = he - hs;
        const hIn = Math.min(he, this.constants.H) - Math.max(hs, 0);
        for (let jj = 0; jj < this.constants.kW; jj++) {
          const tw = iw + this.constants.pW - (this.constants.kW - 1 - jj);
          if (tw >= 0) {
            const ow = idiv(tw, this.constants.sW);
            if (ow * this.constants.sW === tw && ow < this.constants.OW) {
              const ws = ow * this.constants.sW - this.constants.pW;
              const we = Math.min(ws + this.constants.kW, this.constants.W + this.constants.pW);
              let divisor = hIn * (Math.min(we, this.constants.W) - Math.max(ws, 0));
              if (this.constants.includePad > 0) { divisor = hPadded * (we - ws); }
              if (this.constants.override > 0) { divisor = this.constants.divisor; }
              sum += dy[yPlane + oh * this.constants.OW + ow] / divisor;
            }
          }
        }
      }
    }
  }
  return sum;
};

/** dx (N×C×H×W): each dy (N×C×OH×OW) / divisor spread over its clipped window. */
export function avgPool2dBackward(rt: GpuRuntime, dy: GpuIn, p: AvgPool2dParams): GpuArray {
  const n = p.N * p.C * p.H * p.W;
  if (n === 0 || p.OH * p.OW === 0) return zeros(rt, n);
  return rt.run('avgPool2dBackward', avgPoolBackwardKernel, n, avgConstants(p), [dy]);
}

// ---- adaptive average pool: window i along an axis is [⌊i·in/out⌋, ⌈(i+1)·in/out⌉)

function adaptiveStart(i: number, outSize: number, inSize: number): number {
  return Math.floor((i * inSize) / outSize);
}

function adaptiveEnd(i: number, outSize: number, inSize: number): number {
  return Math.ceil(((i + 1) * inSize) / outSize);
}

/** The widest window along an axis, and the most windows that hold one input position: the loop bounds. */
function adaptiveBounds(outSize: number, inSize: number): { span: number; cover: number } {
  let span = 0;
  const count = new Int32Array(inSize);
  for (let o = 0; o < outSize; o++) {
    const a = adaptiveStart(o, outSize, inSize), b = adaptiveEnd(o, outSize, inSize);
    span = Math.max(span, b - a);
    for (let i = a; i < b; i++) count[i]++;
  }
  return { span, cover: count.reduce((m, c) => Math.max(m, c), 0) };
}

function adaptiveConstants(p: AdaptivePool2dParams): Record<string, number> {
  const h = adaptiveBounds(p.OH, p.H), w = adaptiveBounds(p.OW, p.W);
  return {
    H: p.H, W: p.W, OH: p.OH, OW: p.OW, HW: p.H * p.W, OHW: p.OH * p.OW,
    spanH: h.span, spanW: w.span, coverH: h.cover, coverW: w.cover,
  };
}

/** Thread (plane, oh, ow): the mean of x over rows ⌊oh·H/OH⌋ … ⌈(oh+1)·H/OH⌉ (exclusive), likewise columns. */
const adaptiveKernel = function (this: KernelThis, x: number[]): number {
  const plane = idiv(this.thread.x, this.constants.OHW);
  const pos = this.thread.x - plane * this.constants.OHW;
  const oh = idiv(pos, this.constants.OW);
  const ow = pos - oh * this.constants.OW;
  const h0 = idiv(oh * this.constants.H, this.constants.OH);
  const h1 = idiv((oh + 1) * this.constants.H + this.constants.OH - 1, this.constants.OH);
  const w0 = idiv(ow * this.constants.W, this.constants.OW);
  const w1 = idiv((ow + 1) * this.constants.W + this.constants.OW - 1, this.constants.OW);
  const xPlane = plane * this.constants.HW;
  let sum = 0;
  for (let i = 0; i < this.constants.spanH; i++) {
    const ih = h0 + i;
    if (ih < h1) {
      for (let j = 0; j < this.constants.spanW; j++) {
        const iw = w0 + j;
        if (iw < w1) {
          sum += x[xPlane + ih * this.constants.W + iw];
        }
      }
    }
  }
  return sum / ((h1 - h0) * (w1 - w0));
};

/** y (N×C×OH×OW) = adaptive window means of x (N×C×H×W). */
export function adaptiveAvgPool2d(rt: GpuRuntime, x: GpuIn, p: AdaptivePool2dParams): GpuArray {
  const n = p.N * p.C * p.OH * p.OW;
  if (n === 0) return empty(rt);
  if (p.H * p.W === 0) throw new Error(`gpu adaptiveAvgPool2d: empty ${p.H}×${p.W} input`);
  return rt.run('adaptiveAvgPool2d', adaptiveKernel, n, adaptiveConstants(p), [x]);
}

/**
 * Thread (plane, ih, iw) of dx: Σ dy[plane, oh, ow] / |window(oh, ow)| over the windows holding (ih, iw).
 * The first row window ending past ih is oh₀ = ⌊ih·OH/H⌋ (⌈(oh+1)·H/OH⌉ > ih ⇔ oh ≥ ⌊ih·OH/H⌋); from there
 * the windows hold ih while their start ⌊oh·H/OH⌋ ≤ ih, at most coverH of them (likewise columns).
 */
const adaptiveBackwardKernel = function (this: KernelThis, dy: number[]): number {
  const plane = idiv(this.thread.x, this.constants.HW);
  const pos = this.thread.x - plane * this.constants.HW;
  const ih = idiv(pos, this.constants.W);
  const iw = pos - ih * this.constants.W;
  const oh0 = idiv(ih * this.constants.OH, this.constants.H);
  const ow0 = idiv(iw * this.constants.OW, this.constants.W);
  const yPlane = plane * this.constants.OHW;
  let sum = 0;
  for (let t = 0; t < this.constants.coverH; t++) {
    const oh = oh0 + t;
    if (oh < this.constants.OH) {
      const h0 = idiv(oh * this.constants.H, this.constants.OH);
      if (h0 <= ih) {
        const h1 = idiv((oh + 1) * this.constants.H + this.constants.OH - 1, this.constants.OH);
        for (let u = 0; u < this.constants.coverW; u++) {
          const ow = ow0 + u;
          if (ow < this.constants.OW) {
            const w0 = idiv(ow * this.constants.W, this.constants.OW);
            if (w0 <= iw) {
              const w1 = idiv((ow + 1) * this.constants.W + this.constants.OW - 1, this.constants.OW);
              sum += dy[yPlane + oh * this.constants.OW + ow] / ((h1 - h0) * (w1 - w0));
            }
          }
        }
      }
    }
  }
  return sum;
};

/** dx (N×C×H×W): each dy (N×C×OH×OW) / |window| spread over its adaptive window. */
export function adaptiveAvgPool2dBackward(rt: GpuRuntime, dy: GpuIn, p: AdaptivePool2dParams): GpuArray {
  const n = p.N * p.C * p.H * p.W;
  if (n === 0 || p.OH * p.OW === 0) return zeros(rt, n);
  return rt.run('adaptiveAvgPool2dBackward', adaptiveBackwardKernel, n, adaptiveConstants(p), [dy]);
}
