/**
 * Convolutions. Three recorded ops close over each other under differentiation:
 *   y  = conv(x, w)                 dx = convInputGrad(g, w)      dw = convWeightGrad(x, g)
 *   z  = convInputGrad(dy, w)       d(dy) = conv(gz, w)           dw = convWeightGrad(gz, dy)
 *   v  = convWeightGrad(x, dy)      dx = convInputGrad(dy, gv)    d(dy) = conv(x, gv)
 * convInputGrad is exactly the transposed convolution, so convTranspose2d is that op with the roles of
 * input and output exchanged (PyTorch's ConvTranspose weight layout (Cin, Cout/groups, kH, kW) is the
 * layout the mirrored conv expects). Biases are a broadcast add.
 * With `sites` (conv2dActive) the same three ops are evaluated only at a list of output positions — SparK's
 * active-site convolution — and close over each other the same way, each reading or writing only the sites.
 */
import type { Tensor } from '../tensor/tensor.ts';
import type { FloatDType } from '../tensor/dtype.ts';
import { shapeStr } from '../tensor/shape.ts';
import { defineOp } from '../autograd/define.ts';
import { backend } from '../backend/registry.ts';
import type { Conv2dParams } from '../../kernels/cpu/conv2d.ts';
import { devIn, deviceFor, emptyFloat, floatData, fromDevice, requireFloat, requireNdim } from './util.ts';
import { add } from './elementwise.ts';
import { reshape } from './movement.ts';

export type Pair = number | readonly [number, number];

export interface Conv2dOptions { stride?: Pair; padding?: Pair; dilation?: Pair; groups?: number }
export interface ConvTranspose2dOptions extends Conv2dOptions { outputPadding?: Pair }

export function pair(op: string, name: string, v: Pair, min: number): [number, number] {
  const p: [number, number] = typeof v === 'number' ? [v, v] : [v[0], v[1]];
  if (!p.every((x) => Number.isInteger(x) && x >= min)) {
    throw new Error(`${op}: ${name} must be ${min === 0 ? 'non-negative' : 'positive'} integers, got ${JSON.stringify(v)}`);
  }
  return p;
}

/** Conv parameters; with `sites` the conv is evaluated only at those flat output positions (0 elsewhere). */
type ConvAttrs = Conv2dParams & { sites?: Int32Array };

type ConvFn = (inputs: [Tensor, Tensor], p: ConvAttrs) => Tensor;

const convOp: ConvFn = defineOp<[Tensor, Tensor], ConvAttrs>('conv2d', {
  forward: ([x, w], p) => {
    const device = deviceFor(x, w);
    if (device) return fromDevice(device.conv2d(devIn(x), devIn(w), p, p.sites ?? null), [p.N, p.K, p.OH, p.OW]);
    const { t, data } = emptyFloat([p.N, p.K, p.OH, p.OW], x.dtype as FloatDType, true);
    if (p.sites) backend().activeConv2d(floatData(x), floatData(w), data, p, p.sites);
    else backend().conv2d(floatData(x), floatData(w), data, p);
    return t;
  },
  backward: (g, { inputs: [x, w], attrs: p }) => [
    x.requiresGrad ? convInputGradOp([g, w], p) : null,
    w.requiresGrad ? convWeightGradOp([x, g], p) : null,
  ],
});

/** The adjoint of conv in x: dy (N,K,OH,OW), w → dx (N,C,H,W). */
const convInputGradOp: ConvFn = defineOp<[Tensor, Tensor], ConvAttrs>('conv2dInputGrad', {
  forward: ([dy, w], p) => {
    const device = deviceFor(dy, w);
    if (device) return fromDevice(device.conv2dBackwardInput(devIn(dy), devIn(w), p, p.sites ?? null), [p.N, p.C, p.H, p.W]);
    const { t, data } = emptyFloat([p.N, p.C, p.H, p.W], dy.dtype as FloatDType, true);
    if (p.sites) backend().activeConv2dBackwardInput(floatData(dy), floatData(w), data, p, p.sites);
    else backend().conv2dBackwardInput(floatData(dy), floatData(w), data, p);
    return t;
  },
  backward: (g, { inputs: [dy, w], attrs: p }) => [
    dy.requiresGrad ? convOp([g, w], p) : null,
    w.requiresGrad ? convWeightGradOp([g, dy], p) : null,
  ],
});

/** The adjoint of conv in w: x, dy → dw (K, C/groups, R, S). */
const convWeightGradOp: ConvFn = defineOp<[Tensor, Tensor], ConvAttrs>('conv2dWeightGrad', {
  forward: ([x, dy], p) => {
    const device = deviceFor(x, dy);
    if (device) return fromDevice(device.conv2dBackwardWeight(devIn(x), devIn(dy), p, p.sites ?? null), [p.K, p.C / p.groups, p.R, p.S]);
    const { t, data } = emptyFloat([p.K, p.C / p.groups, p.R, p.S], x.dtype as FloatDType, true);
    if (p.sites) backend().activeConv2dBackwardWeight(floatData(x), floatData(dy), data, p, p.sites);
    else backend().conv2dBackwardWeight(floatData(x), floatData(dy), data, p);
    return t;
  },
  backward: (g, { inputs: [x, dy], attrs: p }) => [
    x.requiresGrad ? convInputGradOp([dy, g], p) : null,
    dy.requiresGrad ? convOp([x, g], p) : null,
  ],
});

function checkConvArgs(op: string, x: Tensor, w: Tensor, b: Tensor | undefined, groups: number): void {
  requireFloat(op, 'input', x);
  requireFloat(op, 'weight', w);
  requireNdim(op, 'input', x, 4);
  requireNdim(op, 'weight', w, 4);
  if (x.dtype !== w.dtype) throw new Error(`${op}: input is ${x.dtype} but weight is ${w.dtype}`);
  if (!Number.isInteger(groups) || groups < 1) throw new Error(`${op}: groups must be a positive integer, got ${groups}`);
  if (b) {
    requireFloat(op, 'bias', b);
    if (b.dtype !== x.dtype) throw new Error(`${op}: bias is ${b.dtype} but input is ${x.dtype}`);
  }
}

function addBias(op: string, y: Tensor, b: Tensor | undefined): Tensor {
  if (!b) return y;
  if (b.ndim !== 1 || b.shape[0] !== y.shape[1]) {
    throw new Error(`${op}: bias of shape ${shapeStr(b.shape)} does not match ${y.shape[1]} output channels`);
  }
  return add(y, reshape(b, [1, y.shape[1], 1, 1]));
}

/** The kernel parameters of conv(x: inputShape, w: weightShape), validated; errors name the op and shapes. */
function convParams(op: string, inputShape: readonly number[], weightShape: readonly number[], options: Conv2dOptions): Conv2dParams {
  const groups = options.groups ?? 1;
  const [strideH, strideW] = pair(op, 'stride', options.stride ?? 1, 1);
  const [padH, padW] = pair(op, 'padding', options.padding ?? 0, 0);
  const [dilationH, dilationW] = pair(op, 'dilation', options.dilation ?? 1, 1);
  const [N, C, H, W] = inputShape;
  const [K, Cg, R, S] = weightShape;
  if (C % groups !== 0 || K % groups !== 0) {
    throw new Error(`${op}: groups=${groups} must divide both input channels (${C}, input ${shapeStr(inputShape)}) and output channels (${K}, weight ${shapeStr(weightShape)})`);
  }
  if (Cg * groups !== C) {
    throw new Error(`${op}: weight ${shapeStr(weightShape)} expects ${Cg * groups} input channels with groups=${groups}, but input ${shapeStr(inputShape)} has ${C}`);
  }
  const OH = Math.floor((H + 2 * padH - dilationH * (R - 1) - 1) / strideH) + 1;
  const OW = Math.floor((W + 2 * padW - dilationW * (S - 1) - 1) / strideW) + 1;
  if (OH < 1 || OW < 1) {
    throw new Error(`${op}: kernel ${R}x${S} (dilation ${dilationH},${dilationW}) is larger than the padded input ${shapeStr(inputShape)} with padding ${padH},${padW}`);
  }
  return { N, C, H, W, K, R, S, OH, OW, strideH, strideW, padH, padW, dilationH, dilationW, groups };
}

/** F.conv2d: x (N,C,H,W), w (K, C/groups, R, S), b (K) → (N, K, OH, OW). */
export function conv2d(x: Tensor, w: Tensor, b?: Tensor, options: Conv2dOptions = {}): Tensor {
  checkConvArgs('conv2d', x, w, b, options.groups ?? 1);
  return addBias('conv2d', convOp([x, w], convParams('conv2d', x.shape, w.shape, options)), b);
}

/**
 * The convolution evaluated only at `sites`, flat output positions n·OH·OW + oh·OW + ow (int32, any order, no
 * repeats); every other output is 0. Equal to conv2d(x, w)·mask at a cost proportional to the sites. No bias.
 */
export function conv2dActive(x: Tensor, w: Tensor, sites: Tensor, options: Conv2dOptions = {}): Tensor {
  checkConvArgs('conv2dActive', x, w, undefined, options.groups ?? 1);
  const p = convParams('conv2dActive', x.shape, w.shape, options);
  if (sites.dtype !== 'int32' || sites.ndim !== 1) throw new Error(`conv2dActive: sites must be a 1-D int32 tensor, got ${sites.dtype} ${shapeStr(sites.shape)}`);
  const idx = sites.data as Int32Array;
  const bound = p.N * p.OH * p.OW;
  for (let i = 0; i < idx.length; i++) {
    if (!(idx[i] >= 0 && idx[i] < bound)) throw new Error(`conv2dActive: site ${idx[i]} is outside the ${p.N}x${p.OH}x${p.OW} output`);
  }
  return convOp([x, w], { ...p, sites: idx });
}

function checkGradOutput(op: string, dy: Tensor, p: Conv2dParams): void {
  requireFloat(op, 'gradOutput', dy);
  if (dy.ndim !== 4 || dy.shape[0] !== p.N || dy.shape[1] !== p.K || dy.shape[2] !== p.OH || dy.shape[3] !== p.OW) {
    throw new Error(`${op}: gradOutput ${shapeStr(dy.shape)} should be ${shapeStr([p.N, p.K, p.OH, p.OW])}`);
  }
}

/** torch.nn.grad.conv2d_input: the gradient of conv2d with respect to an input of `inputShape`. */
export function conv2dInput(inputShape: readonly number[], w: Tensor, dy: Tensor, options: Conv2dOptions = {}): Tensor {
  requireFloat('conv2dInput', 'weight', w);
  requireNdim('conv2dInput', 'weight', w, 4);
  const p = convParams('conv2dInput', inputShape, w.shape, options);
  checkGradOutput('conv2dInput', dy, p);
  return convInputGradOp([dy, w], p);
}

/** torch.nn.grad.conv2d_weight: the gradient of conv2d with respect to a weight of `weightShape`. */
export function conv2dWeight(x: Tensor, weightShape: readonly number[], dy: Tensor, options: Conv2dOptions = {}): Tensor {
  requireFloat('conv2dWeight', 'input', x);
  requireNdim('conv2dWeight', 'input', x, 4);
  const p = convParams('conv2dWeight', x.shape, weightShape, options);
  checkGradOutput('conv2dWeight', dy, p);
  return convWeightGradOp([x, dy], p);
}

/**
 * F.convTranspose2d: x (N, Cin, H, W), w (Cin, Cout/groups, R, S), b (Cout) → (N, Cout, OH, OW) with
 * OH = (H−1)·stride − 2·padding + dilation·(R−1) + outputPadding + 1.
 */
export function convTranspose2d(x: Tensor, w: Tensor, b?: Tensor, options: ConvTranspose2dOptions = {}): Tensor {
  const groups = options.groups ?? 1;
  checkConvArgs('convTranspose2d', x, w, b, groups);
  const [strideH, strideW] = pair('convTranspose2d', 'stride', options.stride ?? 1, 1);
  const [padH, padW] = pair('convTranspose2d', 'padding', options.padding ?? 0, 0);
  const [dilationH, dilationW] = pair('convTranspose2d', 'dilation', options.dilation ?? 1, 1);
  const [opH, opW] = pair('convTranspose2d', 'outputPadding', options.outputPadding ?? 0, 0);
  if (opH >= Math.max(strideH, dilationH) || opW >= Math.max(strideW, dilationW)) {
    throw new Error(`convTranspose2d: outputPadding (${opH},${opW}) must be smaller than stride or dilation`);
  }
  const [N, Cin, H, W] = x.shape;
  const [Kw, Coutg, R, S] = w.shape;
  if (Kw !== Cin) throw new Error(`convTranspose2d: weight ${shapeStr(w.shape)} expects ${Kw} input channels but input ${shapeStr(x.shape)} has ${Cin}`);
  if (Cin % groups !== 0) throw new Error(`convTranspose2d: groups=${groups} must divide the input channels (${Cin}, input ${shapeStr(x.shape)})`);
  const OH = (H - 1) * strideH - 2 * padH + dilationH * (R - 1) + opH + 1;
  const OW = (W - 1) * strideW - 2 * padW + dilationW * (S - 1) + opW + 1;
  if (OH < 1 || OW < 1) throw new Error(`convTranspose2d: padding ${padH},${padW} leaves no output for input ${shapeStr(x.shape)}`);
  // the mirrored conv maps (N, Cout, OH, OW) → (N, Cin, H, W)
  const p: Conv2dParams = {
    N, C: Coutg * groups, H: OH, W: OW, K: Cin, R, S, OH: H, OW: W, strideH, strideW, padH, padW, dilationH, dilationW, groups,
  };
  return addBias('convTranspose2d', convInputGradOp([x, w], p), b);
}
