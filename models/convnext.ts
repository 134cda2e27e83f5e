/**
 * ConvNeXt (V1) with the official facebookresearch/ConvNeXt names, as SparK uses it:
 *   downsample_layers.0 = [Conv 4×4/4, LN (channels first)], downsample_layers.i = [LN, Conv 2×2/2]
 *   stages.i.j = Block: dwconv 7×7 → LN (channels last) → pwconv1 (×4) → exact GELU → pwconv2 → γ → drop path
 *   norm + head (only with numClasses > 0).
 * Init as official: convs and linears truncated normal (std 0.02), biases 0; γ = layerScaleInit.
 * Drop-path rates are torch.linspace(0, dropPath, Σdepths) in float32, as the official code computes them
 * (to 1 ulp; see linspaceFloat32).
 * The small-image configuration uses a 3×3/1 stem (padding 1) instead of 4×4/4: downsample ratio 8, so a
 * 32×32 image ends on a 4×4 grid.
 *
 * Shapes: B batch, C channels, H×W spatial; at 224 the stage maps are 56, 28, 14, 7 (ratio 32).
 */
import type { Tensor } from '../src/tensor/tensor.ts';
import { ones } from '../src/tensor/create.ts';
import { add, mul } from '../src/ops/elementwise.ts';
import { mean } from '../src/ops/reduce.ts';
import { permute } from '../src/ops/movement.ts';
import { Module, Layer, Parameter, type ForwardContext } from '../src/nn/module.ts';
import { Conv2d, LayerNorm, Linear, GELU, DropPath } from '../src/nn/layers.ts';
import { Sequential, ModuleList } from '../src/nn/containers.ts';
import * as init from '../src/nn/init.ts';

export interface ConvNeXtOptions {
  depths?: number[];
  dims?: number[];
  dropPath?: number;
  layerScaleInit?: number;
  numClasses?: number;
  inChannels?: number;
  headInitScale?: number;
  /** 3×3 stride-1 stem, for 28–64 px images (downsample ratio 8) */
  smallInput?: boolean;
}

export class ConvNeXtBlock extends Layer {
  gamma: Parameter | null;
  dwconv: Conv2d;
  norm: LayerNorm;
  pwconv1: Linear;
  act = new GELU();
  pwconv2: Linear;
  drop_path: DropPath | null;

  constructor(dim: number, dropPath: number, layerScaleInit: number) {
    super();
    this.gamma = layerScaleInit > 0 ? new Parameter(mul(ones([dim]), layerScaleInit)) : null;
    this.dwconv = new Conv2d(dim, dim, 7, { padding: 3, groups: dim });
    this.norm = new LayerNorm(dim, { eps: 1e-6 });
    this.pwconv1 = new Linear(dim, 4 * dim);
    this.pwconv2 = new Linear(4 * dim, dim);
    this.drop_path = dropPath > 0 ? new DropPath(dropPath) : null;
  }

  /** The residual branch, (B, C, H, W) → (B, C, H, W); the MLP runs channels-last. */
  branch(x: Tensor, ctx?: ForwardContext): Tensor {
    let y = permute(this.dwconv.forward(x, ctx), [0, 2, 3, 1]);
    y = this.pwconv2.forward(this.act.forward(this.pwconv1.forward(this.norm.forward(y, ctx))));
    if (this.gamma) y = mul(y, this.gamma);
    return permute(y, [0, 3, 1, 2]);
  }

  forward(x: Tensor, ctx?: ForwardContext): Tensor {
    let y = this.branch(x, ctx);
    if (this.drop_path) y = this.drop_path.forward(y);
    return add(x, y);
  }
}

/**
 * torch.linspace(start, end, steps) in float32 arithmetic: the step from the ends, the lower half counted up from
 * start and the upper half back from end (torch's scalar formula). torch's vectorised CPU kernel (≥ 16 steps)
 * rounds some entries differently, by 1 ulp, and differently per CPU capability; those rates only scale random
 * drop-path masks.
 */
export function linspaceFloat32(start: number, end: number, steps: number): number[] {
  const f = Math.fround;
  if (steps === 1) return [f(start)];
  const step = f(f(f(end) - f(start)) / (steps - 1));
  const half = Math.floor(steps / 2);
  return Array.from({ length: steps }, (_, i) => (i < half ? f(f(start) + f(step * i)) : f(f(end) - f(step * (steps - i - 1)))));
}

export class ConvNeXt extends Module {
  downsample_layers: ModuleList<Sequential>;
  stages: ModuleList<Sequential>;
  norm: LayerNorm | null;
  head: Linear | null;
  readonly downsampleRatio: number;
  readonly featureMapChannels: number[];
  readonly numClasses: number;

  constructor(options: ConvNeXtOptions = {}) {
    super();
    const {
      depths = [3, 3, 9, 3], dims = [96, 192, 384, 768], dropPath = 0, layerScaleInit = 1e-6, numClasses = 0,
      inChannels = 3, headInitScale = 1, smallInput = false,
    } = options;
    if (depths.length !== 4 || dims.length !== 4) throw new Error(`convnext: depths and dims need 4 stages, got depths [${depths}] dims [${dims}]`);
    const stem = smallInput ? new Conv2d(inChannels, dims[0], 3, { padding: 1 }) : new Conv2d(inChannels, dims[0], 4, { stride: 4 });
    this.downsample_layers = new ModuleList([
      new Sequential([stem, new LayerNorm(dims[0], { eps: 1e-6, dataFormat: 'channelsFirst' })]),
      ...[1, 2, 3].map((i) => new Sequential([
        new LayerNorm(dims[i - 1], { eps: 1e-6, dataFormat: 'channelsFirst' }), new Conv2d(dims[i - 1], dims[i], 2, { stride: 2 }),
      ])),
    ]);
    const rates = linspaceFloat32(0, dropPath, depths.reduce((a, b) => a + b, 0));
    let k = 0;
    this.stages = new ModuleList(depths.map((depth, i) =>
      new Sequential(Array.from({ length: depth }, () => new ConvNeXtBlock(dims[i], rates[k++], layerScaleInit)))));
    this.numClasses = numClasses;
    this.norm = numClasses > 0 ? new LayerNorm(dims[3], { eps: 1e-6 }) : null;
    this.head = numClasses > 0 ? new Linear(dims[3], numClasses) : null;
    this.downsampleRatio = smallInput ? 8 : 32;
    this.featureMapChannels = [...dims];
    this.initWeights(headInitScale);
  }

  private initWeights(headInitScale: number): void {
    for (const [, m] of this.namedModules()) {
      if (m instanceof Conv2d || m instanceof Linear) {
        init.truncNormal(m.weight, { std: 0.02 });
        if (m.bias) init.zeros(m.bias);
      }
    }
    if (this.head) {
      for (const p of [this.head.weight, this.head.bias!]) {
        const d = p.data as Float32Array;
        for (let i = 0; i < d.length; i++) d[i] *= headInitScale;
      }
    }
  }

  /** The four stage maps, largest first. */
  forwardFeatures(x: Tensor, ctx?: ForwardContext): Tensor[] {
    const feats: Tensor[] = [];
    for (let i = 0; i < 4; i++) {
      x = this.stages[i].forward(this.downsample_layers[i].forward(x, ctx), ctx);
      feats.push(x);
    }
    return feats;
  }

  /** Global average pool → LN → head when numClasses > 0; otherwise the pooled features. */
  forward(x: Tensor, ctx?: ForwardContext): Tensor {
    const pooled = mean(this.forwardFeatures(x, ctx)[3], [2, 3]);
    return this.head && this.norm ? this.head.forward(this.norm.forward(pooled)) : pooled;
  }
}

export function convnext(options: ConvNeXtOptions = {}): ConvNeXt {
  return new ConvNeXt(options);
}

type Preset = Omit<ConvNeXtOptions, 'depths' | 'dims'>;
const preset = (depths: number[], dims: number[]) => (o: Preset = {}) => new ConvNeXt({ ...o, depths, dims });
export const convnextAtto = preset([2, 2, 6, 2], [40, 80, 160, 320]);
export const convnextFemto = preset([2, 2, 6, 2], [48, 96, 192, 384]);
export const convnextPico = preset([2, 2, 6, 2], [64, 128, 256, 512]);
export const convnextNano = preset([2, 2, 8, 2], [80, 160, 320, 640]);
export const convnextTiny = preset([3, 3, 9, 3], [96, 192, 384, 768]);
export const convnextSmall = preset([3, 3, 27, 3], [96, 192, 384, 768]);
export const convnextBase = preset([3, 3, 27, 3], [128, 256, 512, 1024]);
export const convnextLarge = preset([3, 3, 27, 3], [192, 384, 768, 1536]);
