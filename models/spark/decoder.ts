/**
 * SparK's LightDecoder: a UNet-style stack of 2× upsampling blocks from stride `upSampleRatio` to stride 1,
 * with channels width, width/2, …, width/2ⁿ (n = log2 ratio), then a 1×1 projection to 3 channels.
 * Each block: ConvTranspose2d(k4, s2, p1) → Conv3×3 → BN → ReLU6 → Conv3×3 → BN (no activation at the end).
 * Skip features are *added* before each block. Its BNs are dense (the decoder sees dense maps).
 * Init as official: convs truncated normal (std 0.02), transposed convs kaiming normal (fan_out, relu), biases 0.
 *
 * Shapes at 224 with width 768: (B,768,7,7) → (B,384,14,14) → … → (B,24,224,224) → proj (B,3,224,224).
 */
import type { Tensor } from '../../src/tensor/tensor.ts';
import { add } from '../../src/ops/elementwise.ts';
import { Module, Layer } from '../../src/nn/module.ts';
import { Conv2d, ConvTranspose2d, BatchNorm2d, ReLU6 } from '../../src/nn/layers.ts';
import { Sequential, ModuleList } from '../../src/nn/containers.ts';
import * as init from '../../src/nn/init.ts';

export class UNetBlock extends Layer {
  up_sample: ConvTranspose2d;
  conv: Sequential;

  constructor(cin: number, cout: number) {
    super();
    this.up_sample = new ConvTranspose2d(cin, cin, 4, { stride: 2, padding: 1 });
    this.conv = new Sequential([
      new Conv2d(cin, cin, 3, { padding: 1, bias: false }), new BatchNorm2d(cin), new ReLU6(),
      new Conv2d(cin, cout, 3, { padding: 1, bias: false }), new BatchNorm2d(cout),
    ]);
  }

  forward(x: Tensor): Tensor {
    return this.conv.forward(this.up_sample.forward(x));
  }
}

export class LightDecoder extends Module {
  dec: ModuleList<UNetBlock>;
  proj: Conv2d;
  readonly width: number;

  constructor(upSampleRatio: number, width = 768) {
    super();
    const n = Math.round(Math.log2(upSampleRatio));
    if (!Number.isInteger(upSampleRatio) || 2 ** n !== upSampleRatio) throw new Error(`LightDecoder: upSampleRatio must be a power of 2, got ${upSampleRatio}`);
    const channels = Array.from({ length: n + 1 }, (_, i) => Math.floor(width / 2 ** i));
    if (channels[n] < 1) throw new Error(`LightDecoder: width ${width} halves to 0 channels over ${n} blocks; use at least ${2 ** n}`);
    this.width = width;
    this.dec = new ModuleList(channels.slice(0, -1).map((cin, i) => new UNetBlock(cin, channels[i + 1])));
    this.proj = new Conv2d(channels[n], 3, 1);
    this.initWeights();
  }

  private initWeights(): void {
    for (const [, m] of this.namedModules()) {
      if (m instanceof Conv2d) init.truncNormal(m.weight, { std: 0.02 });
      else if (m instanceof ConvTranspose2d) init.kaimingNormal(m.weight, { mode: 'fanOut', nonlinearity: 'relu' });
      if ((m instanceof Conv2d || m instanceof ConvTranspose2d) && m.bias) init.zeros(m.bias);
    }
  }

  /** toDec[i] is the densified map added before block i (smallest first); blocks past the list get none. */
  forward(toDec: readonly (Tensor | null)[]): Tensor {
    let x: Tensor | null = null;
    for (let i = 0; i < this.dec.length; i++) {
      const skip = i < toDec.length ? toDec[i] : null;
      if (skip) x = x ? add(x, skip) : skip;
      if (!x) throw new Error('LightDecoder: the first block needs a feature map');
      x = this.dec[i].forward(x);
    }
    return this.proj.forward(x!);
  }
}
