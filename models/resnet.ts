/**
 * ResNet with timm's layout and names (v1.5: the stride sits on the 3×3 conv; downsample = 1×1 conv + BN;
 * the last BN of every block starts at γ = 0; drop path rises linearly over blocks), so weights move to and
 * from timm's resnet18/34/50/101 key for key. `widths` are the stage widths (the stem has widths[0] channels).
 * The small-image configuration swaps the 7×7/2 stem and the max pool for a 3×3/1 conv: downsample ratio 8,
 * so a 32×32 image still ends on a 4×4 grid.
 *
 * Shapes: B batch, C channels, H×W spatial; at 224 the stage maps are 56, 28, 14, 7 (ratio 32).
 */
import type { Tensor } from '../src/tensor/tensor.ts';
import { add } from '../src/ops/elementwise.ts';
import { flatten } from '../src/ops/movement.ts';
import * as F from '../src/ops/functional.ts';
import { Module, Layer, type ForwardContext } from '../src/nn/module.ts';
import { Conv2d, BatchNorm2d, ReLU, MaxPool2d, Linear, DropPath } from '../src/nn/layers.ts';
import { Sequential } from '../src/nn/containers.ts';
import * as init from '../src/nn/init.ts';

export interface ResNetOptions {
  block?: 'basic' | 'bottleneck';
  layers?: number[];
  widths?: number[];
  /** classifier outputs; 0 (the default) gives pooled features from forward */
  numClasses?: number;
  inChannels?: number;
  dropPath?: number;
  /** 3×3 stride-1 stem without max pool, for 28–64 px images (downsample ratio 8) */
  smallInput?: boolean;
}

class BasicBlock extends Layer {
  static readonly expansion = 1;
  conv1: Conv2d; bn1: BatchNorm2d; act1 = new ReLU();
  conv2: Conv2d; bn2: BatchNorm2d; act2 = new ReLU();
  downsample: Sequential | null;
  drop_path: DropPath | null;

  constructor(inplanes: number, planes: number, stride: number, dropPath: number) {
    super();
    this.conv1 = new Conv2d(inplanes, planes, 3, { stride, padding: 1, bias: false });
    this.bn1 = new BatchNorm2d(planes);
    this.conv2 = new Conv2d(planes, planes, 3, { padding: 1, bias: false });
    this.bn2 = new BatchNorm2d(planes);
    this.downsample = shortcut(inplanes, planes, stride);
    this.drop_path = dropPath > 0 ? new DropPath(dropPath) : null;
  }

  lastBn(): BatchNorm2d { return this.bn2; }

  forward(x: Tensor, ctx?: ForwardContext): Tensor {
    let y = this.act1.forward(this.bn1.forward(this.conv1.forward(x, ctx), ctx));
    y = this.bn2.forward(this.conv2.forward(y, ctx), ctx);
    if (this.drop_path) y = this.drop_path.forward(y);
    return this.act2.forward(add(y, this.downsample ? this.downsample.forward(x, ctx) : x));
  }
}

class Bottleneck extends Layer {
  static readonly expansion = 4;
  conv1: Conv2d; bn1: BatchNorm2d; act1 = new ReLU();
  conv2: Conv2d; bn2: BatchNorm2d; act2 = new ReLU();
  conv3: Conv2d; bn3: BatchNorm2d; act3 = new ReLU();
  downsample: Sequential | null;
  drop_path: DropPath | null;

  constructor(inplanes: number, planes: number, stride: number, dropPath: number) {
    super();
    const out = planes * Bottleneck.expansion;
    this.conv1 = new Conv2d(inplanes, planes, 1, { bias: false });
    this.bn1 = new BatchNorm2d(planes);
    this.conv2 = new Conv2d(planes, planes, 3, { stride, padding: 1, bias: false });
    this.bn2 = new BatchNorm2d(planes);
    this.conv3 = new Conv2d(planes, out, 1, { bias: false });
    this.bn3 = new BatchNorm2d(out);
    this.downsample = shortcut(inplanes, out, stride);
    this.drop_path = dropPath > 0 ? new DropPath(dropPath) : null;
  }

  lastBn(): BatchNorm2d { return this.bn3; }

  forward(x: Tensor, ctx?: ForwardContext): Tensor {
    let y = this.act1.forward(this.bn1.forward(this.conv1.forward(x, ctx), ctx));
    y = this.act2.forward(this.bn2.forward(this.conv2.forward(y, ctx), ctx));
    y = this.bn3.forward(this.conv3.forward(y, ctx), ctx);
    if (this.drop_path) y = this.drop_path.forward(y);
    return this.act3.forward(add(y, this.downsample ? this.downsample.forward(x, ctx) : x));
  }
}

/** timm's projection shortcut: 1×1 conv (carrying the stride) + BN, when the shape changes. */
function shortcut(inplanes: number, out: number, stride: number): Sequential | null {
  if (stride === 1 && inplanes === out) return null;
  return new Sequential([new Conv2d(inplanes, out, 1, { stride, bias: false }), new BatchNorm2d(out)]);
}

export class ResNet extends Module {
  conv1: Conv2d;
  bn1: BatchNorm2d;
  act1 = new ReLU();
  maxpool: MaxPool2d | null;
  layer1: Sequential; layer2: Sequential; layer3: Sequential; layer4: Sequential;
  fc: Linear | null;
  readonly downsampleRatio: number;
  readonly featureMapChannels: number[];
  readonly numClasses: number;

  constructor(options: ResNetOptions = {}) {
    super();
    const { block = 'basic', layers = [2, 2, 2, 2], widths = [64, 128, 256, 512], numClasses = 0, inChannels = 3, dropPath = 0, smallInput = false } = options;
    if (layers.length !== 4 || widths.length !== 4) throw new Error(`resnet: layers and widths need 4 stages, got layers [${layers}] widths [${widths}]`);
    const Block = block === 'basic' ? BasicBlock : Bottleneck;
    const stem = widths[0];
    this.conv1 = smallInput
      ? new Conv2d(inChannels, stem, 3, { stride: 1, padding: 1, bias: false })
      : new Conv2d(inChannels, stem, 7, { stride: 2, padding: 3, bias: false });
    this.bn1 = new BatchNorm2d(stem);
    this.maxpool = smallInput ? null : new MaxPool2d({ kernelSize: 3, stride: 2, padding: 1 });
    // timm: block i of n (counted over the whole net) gets drop path rate·i/(n−1)
    const total = layers.reduce((a, b) => a + b, 0);
    let blockIndex = 0;
    let inplanes = stem;
    const stages = layers.map((depth, s) => {
      const blocks: Layer[] = [];
      for (let i = 0; i < depth; i++) {
        const rate = total > 1 ? (dropPath * blockIndex) / (total - 1) : 0;
        blocks.push(new Block(inplanes, widths[s], i === 0 && s > 0 ? 2 : 1, rate));
        inplanes = widths[s] * Block.expansion;
        blockIndex++;
      }
      return new Sequential(blocks);
    });
    [this.layer1, this.layer2, this.layer3, this.layer4] = stages;
    this.featureMapChannels = widths.map((w) => w * Block.expansion);
    this.numClasses = numClasses;
    this.fc = numClasses > 0 ? new Linear(inplanes, numClasses) : null;
    this.downsampleRatio = smallInput ? 8 : 32;
    this.initWeights();
  }

  /** timm: convs kaiming-normal (fan_out, relu); BN γ=1, β=0; the last BN of each block γ=0. */
  private initWeights(): void {
    for (const [, m] of this.namedModules()) {
      if (m instanceof Conv2d) init.kaimingNormal(m.weight, { mode: 'fanOut', nonlinearity: 'relu' });
    }
    for (const [, m] of this.namedModules()) {
      if (m instanceof BasicBlock || m instanceof Bottleneck) init.zeros(m.lastBn().weight!);
    }
  }

  /** The four stage maps, largest first (strides 4, 8, 16, 32 with the standard stem). */
  forwardFeatures(x: Tensor, ctx?: ForwardContext): Tensor[] {
    let h = this.act1.forward(this.bn1.forward(this.conv1.forward(x, ctx), ctx));
    if (this.maxpool) h = this.maxpool.forward(h, ctx);
    const feats: Tensor[] = [];
    for (const stage of [this.layer1, this.layer2, this.layer3, this.layer4]) {
      h = stage.forward(h, ctx);
      feats.push(h);
    }
    return feats;
  }

  /** Global average pool of the last map, then the classifier when numClasses > 0. */
  forward(x: Tensor, ctx?: ForwardContext): Tensor {
    const feats = this.forwardFeatures(x, ctx);
    const pooled = flatten(F.adaptiveAvgPool2d(feats[3], 1), 1);
    return this.fc ? this.fc.forward(pooled) : pooled;
  }
}

export function resnet(options: ResNetOptions = {}): ResNet {
  return new ResNet(options);
}

type Preset = Omit<ResNetOptions, 'block' | 'layers'>;
export const resnet18 = (o: Preset = {}) => new ResNet({ ...o, block: 'basic', layers: [2, 2, 2, 2] });
export const resnet34 = (o: Preset = {}) => new ResNet({ ...o, block: 'basic', layers: [3, 4, 6, 3] });
export const resnet50 = (o: Preset = {}) => new ResNet({ ...o, block: 'bottleneck', layers: [3, 4, 6, 3] });
export const resnet101 = (o: Preset = {}) => new ResNet({ ...o, block: 'bottleneck', layers: [3, 4, 23, 3] });
export const resnet152 = (o: Preset = {}) => new ResNet({ ...o, block: 'bottleneck', layers: [3, 8, 36, 3] });
export const resnet200 = (o: Preset = {}) => new ResNet({ ...o, block: 'bottleneck', layers: [3, 24, 36, 3] });
