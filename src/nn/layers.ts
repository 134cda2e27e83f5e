/**
 * Layers with PyTorch's names, attributes and default initialisation: Conv2d, ConvTranspose2d, Linear,
 * BatchNorm2d, LayerNorm (channels-last, or ConvNeXt's channels-first form), activations, pools, dropout,
 * drop path, Identity. Each forward is one call into F.
 * The layers SparK makes sparse (conv, pools, norms) take the ForwardContext that carries its mask; the dense
 * versions here ignore it.
 */
import { Tensor } from '../tensor/tensor.ts';
import { zeros, ones } from '../tensor/create.ts';
import type { FloatDType } from '../tensor/dtype.ts';
import { shapeStr } from '../tensor/shape.ts';
import * as F from '../ops/functional.ts';
import { permute } from '../ops/movement.ts';
import { Layer, Parameter, type ForwardContext } from './module.ts';
import * as init from './init.ts';

type Pair = number | readonly [number, number];

function pairOf(v: Pair): [number, number] {
  return typeof v === 'number' ? [v, v] : [v[0], v[1]];
}

export interface Conv2dOptions { stride?: Pair; padding?: Pair; dilation?: Pair; groups?: number; bias?: boolean; dtype?: FloatDType }

/** Checks groups against the channels, then makes the weight and bias with PyTorch's default init. */
function convParameters(layer: string, inChannels: number, outChannels: number, weightShape: number[], options: Conv2dOptions): { weight: Parameter; bias: Parameter | null } {
  const groups = options.groups ?? 1;
  if (inChannels % groups || outChannels % groups) {
    throw new Error(`${layer}: groups=${groups} must divide in_channels=${inChannels} and out_channels=${outChannels}`);
  }
  const dtype = options.dtype ?? 'float32';
  const weight = new Parameter(zeros(weightShape, { dtype }));
  const bias = options.bias === false ? null : new Parameter(zeros([outChannels], { dtype }));
  init.torchDefault(weight, bias);
  return { weight, bias };
}

export class Conv2d extends Layer {
  weight: Parameter;
  bias: Parameter | null;
  readonly inChannels: number;
  readonly outChannels: number;
  readonly kernelSize: [number, number];
  readonly stride: [number, number];
  readonly padding: [number, number];
  readonly dilation: [number, number];
  readonly groups: number;

  constructor(inChannels: number, outChannels: number, kernelSize: Pair, options: Conv2dOptions = {}) {
    super();
    this.inChannels = inChannels;
    this.outChannels = outChannels;
    this.kernelSize = pairOf(kernelSize);
    this.stride = pairOf(options.stride ?? 1);
    this.padding = pairOf(options.padding ?? 0);
    this.dilation = pairOf(options.dilation ?? 1);
    this.groups = options.groups ?? 1;
    ({ weight: this.weight, bias: this.bias } = convParameters('Conv2d', inChannels, outChannels,
      [outChannels, inChannels / this.groups, ...this.kernelSize], options));
  }

  forward(x: Tensor, _ctx?: ForwardContext): Tensor {
    return F.conv2d(x, this.weight, this.bias ?? undefined, { stride: this.stride, padding: this.padding, dilation: this.dilation, groups: this.groups });
  }
}

export interface ConvTranspose2dOptions extends Conv2dOptions { outputPadding?: Pair }

export class ConvTranspose2d extends Layer {
  weight: Parameter;
  bias: Parameter | null;
  readonly kernelSize: [number, number];
  readonly stride: [number, number];
  readonly padding: [number, number];
  readonly outputPadding: [number, number];
  readonly dilation: [number, number];
  readonly groups: number;

  constructor(inChannels: number, outChannels: number, kernelSize: Pair, options: ConvTranspose2dOptions = {}) {
    super();
    this.kernelSize = pairOf(kernelSize);
    this.stride = pairOf(options.stride ?? 1);
    this.padding = pairOf(options.padding ?? 0);
    this.outputPadding = pairOf(options.outputPadding ?? 0);
    this.dilation = pairOf(options.dilation ?? 1);
    this.groups = options.groups ?? 1;
    // PyTorch stores the transposed conv's weight as (in, out/groups, kH, kW)
    ({ weight: this.weight, bias: this.bias } = convParameters('ConvTranspose2d', inChannels, outChannels,
      [inChannels, outChannels / this.groups, ...this.kernelSize], options));
  }

  forward(x: Tensor): Tensor {
    return F.convTranspose2d(x, this.weight, this.bias ?? undefined, {
      stride: this.stride, padding: this.padding, outputPadding: this.outputPadding, dilation: this.dilation, groups: this.groups,
    });
  }
}

export class Linear extends Layer {
  weight: Parameter;
  bias: Parameter | null;

  constructor(inFeatures: number, outFeatures: number, options: { bias?: boolean; dtype?: FloatDType } = {}) {
    super();
    const dtype = options.dtype ?? 'float32';
    this.weight = new Parameter(zeros([outFeatures, inFeatures], { dtype }));
    this.bias = options.bias === false ? null : new Parameter(zeros([outFeatures], { dtype }));
    init.torchDefault(this.weight, this.bias);
  }

  forward(x: Tensor): Tensor {
    return F.linear(x, this.weight, this.bias ?? undefined);
  }
}

export interface BatchNormOptions { eps?: number; momentum?: number; affine?: boolean; trackRunningStats?: boolean; dtype?: FloatDType }

/**
 * BatchNorm2d over (N, C, H, W). Buffers carry PyTorch's names; num_batches_tracked is int64 and counts
 * training forwards. Without running stats (trackRunningStats false) batch statistics are used in eval too.
 */
export class BatchNorm2d extends Layer {
  weight: Parameter | null;
  bias: Parameter | null;
  running_mean: Tensor | null;
  running_var: Tensor | null;
  num_batches_tracked: Tensor | null;
  readonly numFeatures: number;
  readonly eps: number;
  readonly momentum: number;

  constructor(numFeatures: number, options: BatchNormOptions = {}) {
    super();
    const dtype = options.dtype ?? 'float32';
    this.numFeatures = numFeatures;
    this.eps = options.eps ?? 1e-5;
    this.momentum = options.momentum ?? 0.1;
    const affine = options.affine ?? true;
    const track = options.trackRunningStats ?? true;
    this.weight = affine ? new Parameter(ones([numFeatures], { dtype })) : null;
    this.bias = affine ? new Parameter(zeros([numFeatures], { dtype })) : null;
    this.running_mean = track ? zeros([numFeatures], { dtype }) : null;
    this.running_var = track ? ones([numFeatures], { dtype }) : null;
    this.num_batches_tracked = track ? zeros([], { dtype: 'int64' }) : null;
  }

  forward(x: Tensor, _ctx?: ForwardContext): Tensor {
    if (x.ndim !== 4) throw new Error(`BatchNorm2d: expected a 4-D input (N, C, H, W), got ${shapeStr(x.shape)}`);
    const useBatchStats = this.training || !this.running_mean;
    if (this.training && this.num_batches_tracked) (this.num_batches_tracked.data as BigInt64Array)[0] += 1n;
    return F.batchNorm(x, this.running_mean, this.running_var, this.weight, this.bias, {
      training: useBatchStats, momentum: this.momentum, eps: this.eps,
    });
  }
}

export type DataFormat = 'channelsLast' | 'channelsFirst';

/**
 * LayerNorm over the last dims (channelsLast, torch.nn.LayerNorm), or over C of (N, C, H, W) (channelsFirst,
 * the official ConvNeXt's LayerNorm). Biased variance; weight 1, bias 0.
 */
export class LayerNorm extends Layer {
  weight: Parameter | null;
  bias: Parameter | null;
  readonly normalizedShape: number[];
  readonly eps: number;
  readonly dataFormat: DataFormat;

  constructor(normalizedShape: number | number[], options: { eps?: number; affine?: boolean; dataFormat?: DataFormat; dtype?: FloatDType } = {}) {
    super();
    this.normalizedShape = typeof normalizedShape === 'number' ? [normalizedShape] : normalizedShape;
    this.eps = options.eps ?? 1e-5;
    this.dataFormat = options.dataFormat ?? 'channelsLast';
    if (this.dataFormat === 'channelsFirst' && this.normalizedShape.length !== 1) {
      throw new Error(`LayerNorm: channelsFirst normalises one channel axis, got normalizedShape ${shapeStr(this.normalizedShape)}`);
    }
    const dtype = options.dtype ?? 'float32';
    const affine = options.affine ?? true;
    this.weight = affine ? new Parameter(ones(this.normalizedShape, { dtype })) : null;
    this.bias = affine ? new Parameter(zeros(this.normalizedShape, { dtype })) : null;
  }

  forward(x: Tensor, _ctx?: ForwardContext): Tensor {
    if (this.dataFormat === 'channelsLast') return F.layerNorm(x, this.normalizedShape, this.weight, this.bias, this.eps);
    if (x.ndim !== 4) throw new Error(`LayerNorm (channelsFirst): expected (N, C, H, W), got ${shapeStr(x.shape)}`);
    const y = F.layerNorm(permute(x, [0, 2, 3, 1]), this.normalizedShape, this.weight, this.bias, this.eps);
    return permute(y, [0, 3, 1, 2]);
  }
}

export class ReLU extends Layer {
  forward(x: Tensor): Tensor { return F.relu(x); }
}

export class ReLU6 extends Layer {
  forward(x: Tensor): Tensor { return F.relu6(x); }
}

/** Exact GELU (erf form), as torch.nn.GELU() with approximate='none'. */
export class GELU extends Layer {
  forward(x: Tensor): Tensor { return F.gelu(x); }
}

export class Identity extends Layer {
  forward(x: Tensor): Tensor { return x; }
}

export class MaxPool2d extends Layer {
  constructor(readonly options: F.MaxPool2dOptions) { super(); }
  forward(x: Tensor, _ctx?: ForwardContext): Tensor { return F.maxPool2d(x, this.options); }
}

export class AvgPool2d extends Layer {
  constructor(readonly options: F.AvgPool2dOptions) { super(); }
  forward(x: Tensor, _ctx?: ForwardContext): Tensor { return F.avgPool2d(x, this.options); }
}

export class AdaptiveAvgPool2d extends Layer {
  constructor(readonly outputSize: Pair) { super(); }
  forward(x: Tensor, _ctx?: ForwardContext): Tensor { return F.adaptiveAvgPool2d(x, this.outputSize); }
}

export class Dropout extends Layer {
  constructor(readonly p = 0.5) { super(); }
  forward(x: Tensor): Tensor { return F.dropout(x, this.p, this.training); }
}

/** Stochastic depth per sample (timm DropPath); identity in eval or at p = 0. */
export class DropPath extends Layer {
  constructor(readonly p = 0) { super(); }
  forward(x: Tensor): Tensor { return F.dropPath(x, this.p, this.training); }
}
