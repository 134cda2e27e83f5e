/**
 * The sparse encoder's layers, with the official semantics (spark-spec §2): conv and pooling run dense and
 * are re-zeroed at masked positions; batch/layer norm gather the visible positions, normalise them (batch
 * statistics from visible positions only) and scatter them back into zeros; a ConvNeXt block masks its
 * branch before the residual add; global average pooling becomes a masked mean.
 *
 * Two implementations, one answer (SparseContext.impl): 'masked' computes as the official code does (dense, then
 * masked); 'active' evaluates convolutions and the ConvNeXt MLP only at visible positions, so the encoder's cost
 * follows the visible fraction. Norms gather the visible rows in both.
 *
 * The mask travels explicitly in a SparseContext (the ForwardContext argument of every forward), never in a
 * global. `sparsify(cnn)` turns a dense sparkts CNN (a user's own included) into its sparse form in place:
 * each Conv2d / MaxPool2d / AvgPool2d / BatchNorm2d / LayerNorm / AdaptiveAvgPool2d / ConvNeXtBlock is given
 * its sparse class (like Python's `obj.__class__ = Sub`), keeping its parameters, buffers and names.
 *
 * Shapes: B batch, C channels, H×W a feature map, fh×fw the patch grid; activeB1ff (B,1,fh,fw), 1 = visible.
 */
import { Tensor } from '../../src/tensor/tensor.ts';
import type { FloatDType } from '../../src/tensor/dtype.ts';
import { shapeStr } from '../../src/tensor/shape.ts';
import { noGrad } from '../../src/autograd/mode.ts';
import { cast, mul, div, add } from '../../src/ops/elementwise.ts';
import { sum } from '../../src/ops/reduce.ts';
import { permute, reshape, indexSelect, indexScatter, upsampleNearest } from '../../src/ops/movement.ts';
import { gatherSites, scatterSites } from '../../src/ops/sites.ts';
import * as F from '../../src/ops/functional.ts';
import type { ForwardContext, Module } from '../../src/nn/module.ts';
import { Conv2d, MaxPool2d, AvgPool2d, BatchNorm2d, LayerNorm, AdaptiveAvgPool2d } from '../../src/nn/layers.ts';
import { ConvNeXtBlock } from '../convnext.ts';

export type SparseImpl = 'masked' | 'active';

/** Per-forward mask state: the patch-grid mask and, per feature-map size, its block-replicated forms. */
export class SparseContext implements ForwardContext {
  readonly activeB1ff: Tensor;
  readonly impl: SparseImpl;
  private masks = new Map<string, Tensor>();
  private rows = new Map<string, Tensor>();

  constructor(activeB1ff: Tensor, impl: SparseImpl = 'masked') {
    this.activeB1ff = activeB1ff;
    this.impl = impl;
  }

  get batch(): number { return this.activeB1ff.shape[0]; }

  private factors(h: number, w: number): [number, number] {
    const [, , fh, fw] = this.activeB1ff.shape;
    if (h % fh !== 0 || w % fw !== 0) {
      throw new Error(`sparse layer: a ${h}x${w} feature map is not a whole multiple of the ${fh}x${fw} mask grid`);
    }
    return [h / fh, w / fw];
  }

  /** The mask at an H×W map as a (B, 1, H, W) float tensor of 0/1. */
  activeAt(h: number, w: number, dtype: FloatDType): Tensor {
    const key = `${h}x${w}:${dtype}`;
    let m = this.masks.get(key);
    if (!m) {
      m = noGrad(() => upsampleNearest(cast(this.activeB1ff, dtype), this.factors(h, w)));
      this.masks.set(key, m);
    }
    return m;
  }

  /** Flat indices b·H·W + y·W + x of the visible positions of an H×W map, in row-major order (int32). */
  visibleRows(h: number, w: number): Tensor {
    const key = `${h}x${w}`;
    let r = this.rows.get(key);
    if (!r) {
      // read off the (host) mask grid, each cell standing for a block of fh×fw positions
      const [B, , gh, gw] = this.activeB1ff.shape;
      const [fh, fw] = this.factors(h, w);
      const grid = this.activeB1ff.data;
      const visibleAt = (i: number) => {
        const b = Math.floor(i / (h * w)), y = Math.floor((i % (h * w)) / w), x = i % w;
        return Number(grid[(b * gh + Math.floor(y / fh)) * gw + Math.floor(x / fw)]) !== 0;
      };
      let n = 0;
      for (let i = 0; i < B * h * w; i++) if (visibleAt(i)) n++;
      const idx = new Int32Array(n);
      for (let i = 0, k = 0; i < B * h * w; i++) if (visibleAt(i)) idx[k++] = i;
      r = new Tensor(idx, [n], 'int32');
      this.rows.set(key, r);
    }
    return r;
  }
}

function sparseContext(layer: string, ctx: ForwardContext | undefined): SparseContext {
  if (!(ctx instanceof SparseContext)) throw new Error(`${layer}: a sparse layer needs the SparK mask (a SparseContext) in its forward context`);
  return ctx;
}

/** y·mask at y's resolution: masked positions become exactly 0. */
function maskOutput(y: Tensor, ctx: SparseContext): Tensor {
  return mul(y, ctx.activeAt(y.shape[2], y.shape[3], y.dtype as FloatDType));
}

/** Gather the visible rows of a (B, H, W, C) map, map the (N_vis, C) rows, scatter the result into zeros. */
function gatherRows(xBHWC: Tensor, ctx: SparseContext, fn: (rows: Tensor) => Tensor): Tensor {
  const [B, H, W, C] = xBHWC.shape;
  if (B !== ctx.batch) throw new Error(`sparse layer: input ${shapeStr(xBHWC.shape)} has batch ${B} but the mask has ${ctx.batch}`);
  const rows = ctx.visibleRows(H, W);
  const out = fn(indexSelect(reshape(xBHWC, [B * H * W, C]), 0, rows));
  return reshape(indexScatter(out, 0, rows, B * H * W), [B, H, W, out.shape[1]]);
}

/** The same for a (B, C, H, W) map, read and written in place (gatherSites / scatterSites): no channels-last copy. */
function gatherSitesNCHW(xBCHW: Tensor, ctx: SparseContext, fn: (rows: Tensor) => Tensor): Tensor {
  const [B, , H, W] = xBCHW.shape;
  if (B !== ctx.batch) throw new Error(`sparse layer: input ${shapeStr(xBCHW.shape)} has batch ${B} but the mask has ${ctx.batch}`);
  const sites = ctx.visibleRows(H, W);
  const out = fn(gatherSites(xBCHW, sites));
  return scatterSites(out, sites, [B, out.shape[1], H, W]);
}

/** PyTorch's conv output size along one axis. */
function convOut(size: number, k: number, stride: number, pad: number, dilation: number): number {
  return Math.floor((size + 2 * pad - dilation * (k - 1) - 1) / stride) + 1;
}

/**
 * masked: the dense conv, re-zeroed at masked outputs. active: the conv evaluated at the visible outputs only
 * (conv2dActive), its bias added there only.
 */
export class SparseConv2d extends Conv2d {
  override forward(x: Tensor, ctx?: ForwardContext): Tensor {
    const c = sparseContext('SparseConv2d', ctx);
    if (c.impl === 'masked') return maskOutput(super.forward(x), c);
    const oh = convOut(x.shape[2], this.kernelSize[0], this.stride[0], this.padding[0], this.dilation[0]);
    const ow = convOut(x.shape[3], this.kernelSize[1], this.stride[1], this.padding[1], this.dilation[1]);
    const y = F.conv2dActive(x, this.weight, c.visibleRows(oh, ow), { stride: this.stride, padding: this.padding, dilation: this.dilation, groups: this.groups });
    if (!this.bias) return y;
    return add(y, mul(reshape(this.bias, [1, this.outChannels, 1, 1]), c.activeAt(oh, ow, y.dtype as FloatDType)));
  }
}

export class SparseMaxPool2d extends MaxPool2d {
  override forward(x: Tensor, ctx?: ForwardContext): Tensor {
    return maskOutput(super.forward(x), sparseContext('SparseMaxPool2d', ctx));
  }
}

export class SparseAvgPool2d extends AvgPool2d {
  override forward(x: Tensor, ctx?: ForwardContext): Tensor {
    return maskOutput(super.forward(x), sparseContext('SparseAvgPool2d', ctx));
  }
}

/**
 * Batch norm whose batch statistics come from visible positions only (N_vis = B × visible cells × scale²),
 * with running statistics updated from those rows; masked outputs are exactly 0 (not β).
 */
export class SparseBatchNorm2d extends BatchNorm2d {
  override forward(x: Tensor, ctx?: ForwardContext): Tensor {
    const c = sparseContext('SparseBatchNorm2d', ctx);
    if (x.ndim !== 4) throw new Error(`SparseBatchNorm2d: expected (B, C, H, W), got ${shapeStr(x.shape)}`);
    const useBatchStats = this.training || !this.running_mean;
    if (this.training && this.num_batches_tracked) (this.num_batches_tracked.data as BigInt64Array)[0] += 1n;
    return gatherSitesNCHW(x, c, (rows) => F.batchNorm(rows, this.running_mean, this.running_var, this.weight, this.bias, {
      training: useBatchStats, momentum: this.momentum, eps: this.eps,
    }));
  }
}

/** Layer norm of the visible positions only, zeros elsewhere; channelsLast takes (B,H,W,C), channelsFirst (B,C,H,W). */
export class SparseLayerNorm extends LayerNorm {
  override forward(x: Tensor, ctx?: ForwardContext): Tensor {
    const c = sparseContext('SparseLayerNorm', ctx);
    if (x.ndim !== 4) throw new Error(`SparseLayerNorm: expected a 4-D map, got ${shapeStr(x.shape)}`);
    const norm = (rows: Tensor) => F.layerNorm(rows, this.normalizedShape, this.weight, this.bias, this.eps);
    if (this.dataFormat === 'channelsLast') return gatherRows(x, c, norm);
    return gatherSitesNCHW(x, c, norm);
  }
}

/** Global average pooling as a masked mean: Σ x·active / Σ active per image and channel. */
export class SparseAdaptiveAvgPool2d extends AdaptiveAvgPool2d {
  override forward(x: Tensor, ctx?: ForwardContext): Tensor {
    const c = sparseContext('SparseAdaptiveAvgPool2d', ctx);
    const [oh, ow] = typeof this.outputSize === 'number' ? [this.outputSize, this.outputSize] : this.outputSize;
    if (oh !== 1 || ow !== 1) throw new Error(`SparseAdaptiveAvgPool2d: only global pooling (output 1x1) has a sparse form, got ${oh}x${ow}`);
    const m = c.activeAt(x.shape[2], x.shape[3], x.dtype as FloatDType);
    return div(sum(mul(x, m), [2, 3], true), sum(m, [2, 3], true));
  }
}

/**
 * The ConvNeXt block with its branch masked before the residual add (the Linear biases fill masked positions).
 * masked: the dense branch, then the mask. active: the per-position part of the branch (LN → MLP → γ) runs on
 * the visible positions' rows only and is scattered back into zeros — the same values.
 */
export class SparseConvNeXtBlock extends ConvNeXtBlock {
  override forward(x: Tensor, ctx?: ForwardContext): Tensor {
    const c = sparseContext('SparseConvNeXtBlock', ctx);
    let y = c.impl === 'masked' ? maskOutput(this.branch(x, c), c) : this.activeBranch(x, c);
    if (this.drop_path) y = this.drop_path.forward(y);
    return add(x, y);
  }

  private activeBranch(x: Tensor, c: SparseContext): Tensor {
    const hBHWC = permute(this.dwconv.forward(x, c), [0, 2, 3, 1]);
    const yBHWC = gatherRows(hBHWC, c, (rows) => {
      const normed = F.layerNorm(rows, this.norm.normalizedShape, this.norm.weight, this.norm.bias, this.norm.eps);
      const out = this.pwconv2.forward(this.act.forward(this.pwconv1.forward(normed)));
      return this.gamma ? mul(out, this.gamma) : out;
    });
    return permute(yBHWC, [0, 3, 1, 2]);
  }
}

/** Dense class → sparse class, most specific first. */
const SPARSE_FORMS: [abstract new (...args: never[]) => Module, { prototype: Module }][] = [
  [ConvNeXtBlock, SparseConvNeXtBlock],
  [Conv2d, SparseConv2d],
  [MaxPool2d, SparseMaxPool2d],
  [AvgPool2d, SparseAvgPool2d],
  [BatchNorm2d, SparseBatchNorm2d],
  [LayerNorm, SparseLayerNorm],
  [AdaptiveAvgPool2d, SparseAdaptiveAvgPool2d],
];

const SPARSE_CLASSES = new Set(SPARSE_FORMS.map(([, s]) => s.prototype));

/**
 * Give every convertible module of the tree its sparse class, in place (parameters, buffers and names are
 * untouched). Returns the same model. Modules already sparse are left alone.
 */
export function sparsify<M extends Module>(model: M): M {
  for (const [, m] of model.namedModules()) {
    if (SPARSE_CLASSES.has(Object.getPrototypeOf(m))) continue;
    const form = SPARSE_FORMS.find(([Dense]) => m instanceof Dense);
    if (form) Object.setPrototypeOf(m, form[1].prototype);
  }
  return model;
}
