/**
 * SparK: sparse masked modelling for a CNN encoder (spark-spec §1–5, §7).
 *   1. mask: activeB1ff (B,1,fh,fw), 1 = visible; the input is zeroed at masked patches
 *   2. encode: the sparse encoder (sparse_encoder.sp_cnn) returns stage maps, largest first; the mask travels
 *      in a SparseContext argument
 *   3. densify, smallest map first (i = 0 at stride `downsampleRatio`): sparse norm → mask token at masked
 *      positions → projection to the decoder width (1×1 at i = 0, 3×3 after; Identity when i = 0 and the
 *      encoder width already equals the decoder's), the width halving at each i
 *   4. decode (LightDecoder) and score: per-patch normalised MSE on masked patches only
 * One forward returns the loss and the three pictures (input, masked input, reconstruction-or-input).
 * State-dict keys are the official ones: sparse_encoder.sp_cnn.*, densify_norms.i.*, densify_projs.i.*,
 * mask_tokens.i, dense_decoder.*.
 *
 * Shapes: B batch; H×W input; p = downsample ratio = patch size; fh = H/p, fw = W/p; L = fh·fw patches.
 */
import type { Tensor } from '../../src/tensor/tensor.ts';
import type { FloatDType } from '../../src/tensor/dtype.ts';
import { shapeStr } from '../../src/tensor/shape.ts';
import { zeros } from '../../src/tensor/create.ts';
import { defaultGenerator, type Generator } from '../../src/tensor/random.ts';
import { noGrad } from '../../src/autograd/mode.ts';
import { cast, mul, where } from '../../src/ops/elementwise.ts';
import { upsampleNearest } from '../../src/ops/movement.ts';
import { Module, Layer, Parameter, type LoadResult } from '../../src/nn/module.ts';
import { Conv2d, Identity, BatchNorm2d, LayerNorm } from '../../src/nn/layers.ts';
import { ModuleList, ParameterList } from '../../src/nn/containers.ts';
import * as init from '../../src/nn/init.ts';
import { LightDecoder } from './decoder.ts';
import { SparseContext, sparsify, type SparseImpl } from './sparse.ts';
import { checkActive, randomActive, visibleCount } from './mask.ts';
import { maskedPatchLoss, patchify, patchTarget, reconstruction } from './loss.ts';

/** What SparK needs of an encoder (spark-spec §6.1): stage maps largest first, their channels, the total stride. */
export interface HierarchicalEncoder extends Module {
  readonly downsampleRatio: number;
  readonly featureMapChannels: readonly number[];
  forwardFeatures(x: Tensor, ctx?: SparseContext): Tensor[];
}

export interface SparKOptions {
  /** square side, or [h, w]; both must be multiples of the encoder's downsample ratio */
  inputSize?: number | readonly [number, number];
  /** fraction of patches masked (0.6 official) */
  maskRatio?: number;
  decoderWidth?: number;
  /** 'bn' for ResNets, 'ln' for ConvNeXts, 'none' for identity (a custom CNN's default) */
  densifyNorm?: 'bn' | 'ln' | 'none';
  /** 'active' (default): the encoder computes visible positions only; 'masked': dense then masked, as the official code */
  sparseImpl?: SparseImpl;
  generator?: Generator;
}

export interface SparKOutput {
  loss: Tensor;
  /** the input, (B,3,H,W) */
  inp: Tensor;
  /** the input with masked patches zeroed */
  masked: Tensor;
  /** visible patches from the input, masked ones from the de-normalised reconstruction */
  recOrInp: Tensor;
  /** the mask used, (B,1,fh,fw) bool */
  activeB1ff: Tensor;
}

/** Holds the sparse CNN under the official name `sp_cnn`. */
export class SparseEncoder extends Module {
  sp_cnn: HierarchicalEncoder;
  constructor(cnn: HierarchicalEncoder) {
    super();
    this.sp_cnn = sparsify(cnn);
  }
}

/** Keys the official checkpoints carry that hold nothing (spark-spec §8.6): skipped when loading. */
const DEPRECATED_KEYS = ['imn_m', 'imn_s', 'norm_black'];

export class SparK extends Module {
  sparse_encoder: SparseEncoder;
  dense_decoder: LightDecoder;
  densify_norms: ModuleList<Layer>;
  densify_projs: ModuleList<Layer>;
  mask_tokens: ParameterList;
  readonly inputSize: [number, number];
  readonly downsampleRatio: number;
  readonly grid: [number, number];
  readonly maskRatio: number;
  readonly lenKeep: number;
  readonly densifyNorm: 'bn' | 'ln' | 'none';
  sparseImpl: SparseImpl;
  private readonly generator: Generator;

  constructor(encoder: HierarchicalEncoder, options: SparKOptions = {}) {
    super();
    const { inputSize = 224, maskRatio = 0.6, decoderWidth = 768, densifyNorm = 'bn', sparseImpl = 'active' } = options;
    const ratio = encoder.downsampleRatio;
    const [h, w] = typeof inputSize === 'number' ? [inputSize, inputSize] : inputSize;
    if (!Number.isInteger(ratio) || ratio < 1) throw new Error(`SparK: the encoder's downsampleRatio must be a positive integer, got ${ratio}`);
    if (h % ratio !== 0 || w % ratio !== 0) throw new Error(`SparK: inputSize ${h}x${w} is not divisible by the encoder's downsample ratio ${ratio}`);
    if (!(maskRatio >= 0 && maskRatio < 1)) throw new Error(`SparK: maskRatio must be in [0, 1), got ${maskRatio}`);
    if (!Number.isInteger(decoderWidth) || decoderWidth < 32) throw new Error(`SparK: decoderWidth must be an integer of at least 32, got ${decoderWidth}`);
    this.inputSize = [h, w];
    this.downsampleRatio = ratio;
    this.grid = [h / ratio, w / ratio];
    this.maskRatio = maskRatio;
    this.lenKeep = visibleCount(this.grid[0], this.grid[1], maskRatio);
    this.densifyNorm = densifyNorm;
    this.sparseImpl = sparseImpl;
    this.generator = options.generator ?? defaultGenerator;

    this.sparse_encoder = new SparseEncoder(encoder);
    this.dense_decoder = new LightDecoder(ratio, decoderWidth);
    // densify layers from the smallest map (the encoder's last) to the largest; the decoder width halves each step
    const widths = [...encoder.featureMapChannels].reverse();
    const norms: Layer[] = [], projs: Layer[] = [], tokens: Parameter[] = [];
    let dWidth = decoderWidth;
    widths.forEach((eWidth, i) => {
      tokens.push(new Parameter(init.truncNormal(zeros([1, eWidth, 1, 1]), { std: 0.02, a: -0.02, b: 0.02 }, this.generator)));
      norms.push(densifyNorm === 'bn' ? sparsify(new BatchNorm2d(eWidth))
        : densifyNorm === 'ln' ? sparsify(new LayerNorm(eWidth, { eps: 1e-6, dataFormat: 'channelsFirst' }))
          : new Identity());
      const k = i === 0 ? 1 : 3;
      projs.push(i === 0 && eWidth === dWidth ? new Identity() : new Conv2d(eWidth, dWidth, k, { padding: k >> 1 }));
      dWidth = Math.floor(dWidth / 2);
    });
    this.mask_tokens = new ParameterList(tokens);
    this.densify_norms = new ModuleList(norms);
    this.densify_projs = new ModuleList(projs);
  }

  get encoder(): HierarchicalEncoder {
    return this.sparse_encoder.sp_cnn;
  }

  /** A fresh random mask for a batch: (B, 1, fh, fw) bool, lenKeep visible cells per image. */
  randomMask(batch: number, generator: Generator = this.generator): Tensor {
    return randomActive(batch, this.grid[0], this.grid[1], this.lenKeep, generator);
  }

  forward(inpBCHW: Tensor, options: { active?: Tensor } = {}): SparKOutput {
    const [h, w] = this.inputSize;
    if (inpBCHW.ndim !== 4 || inpBCHW.shape[1] !== 3 || inpBCHW.shape[2] !== h || inpBCHW.shape[3] !== w) {
      throw new Error(`SparK: images must be (B, 3, ${h}, ${w}), got ${shapeStr(inpBCHW.shape)}`);
    }
    const B = inpBCHW.shape[0];
    const [fh, fw] = this.grid;
    const activeB1ff = options.active ? checkActive(options.active, B, fh, fw) : this.randomMask(B);
    if (this.training) this.checkTrainable(activeB1ff);
    const ctx = new SparseContext(activeB1ff, this.sparseImpl);
    const dtype = inpBCHW.dtype as FloatDType;

    // 1. mask the pixels
    const activeB1HW = noGrad(() => upsampleNearest(activeB1ff, this.downsampleRatio));
    const maskedBCHW = mul(inpBCHW, cast(activeB1HW, dtype));

    // 2. encode; 3. densify from the smallest map up
    const featsBCHW = this.encoder.forwardFeatures(maskedBCHW, ctx).reverse();
    const toDec = featsBCHW.map((feat, i) => {
      const normed = this.densify_norms[i].forward(feat, ctx);
      const visible = ctx.activeAt(feat.shape[2], feat.shape[3], dtype);
      return this.densify_projs[i].forward(where(visible, normed, this.mask_tokens[i]), ctx);
    });

    // 4. decode and score
    const recBCHW = this.dense_decoder.forward(toDec);
    const p = this.downsampleRatio;
    const inpBLN = noGrad(() => patchify(inpBCHW, p));
    const stats = noGrad(() => patchTarget(inpBLN));
    const recBLN = patchify(recBCHW, p);
    const loss = maskedPatchLoss(recBLN, stats.target, activeB1ff);
    const recOrInp = noGrad(() => reconstruction(inpBCHW, recBLN, stats, activeB1HW, p)).detach();
    return { loss, inp: inpBCHW, masked: maskedBCHW.detach(), recOrInp, activeB1ff };
  }

  /** Sparse BN in train mode needs more than one visible value per channel at the coarsest map. */
  private checkTrainable(activeB1ff: Tensor): void {
    let visible = 0;
    for (let i = 0; i < activeB1ff.size; i++) visible += Number(activeB1ff.data[i]);
    if (visible <= 1) {
      throw new Error(`SparK: batch × visible cells must exceed 1 in train mode (sparse batch norm needs 2 values per channel), got ${visible} visible cell(s) in a batch of ${activeB1ff.shape[0]}`);
    }
  }

  /**
   * The official `get_config()` dict that checkpoints carry under module.config (densify norm '' for none; sbn is
   * always false here: there is no cross-device batch norm).
   */
  officialConfig(): Record<string, number | string | boolean | number[]> {
    const [h, w] = this.inputSize;
    return {
      mask_ratio: this.maskRatio,
      densify_norm_str: this.densifyNorm === 'none' ? '' : this.densifyNorm,
      sbn: false,
      hierarchy: this.mask_tokens.length,
      'sparse_encoder.input_size': h === w ? h : [h, w],
      'dense_decoder.width': this.dense_decoder.width,
    };
  }

  /** The bare encoder's weights under timm/official names (what fine-tuning and PyTorch load). */
  encoderStateDict(): Record<string, Tensor> {
    return this.encoder.stateDict();
  }

  /**
   * Loads a SparK state dict, including an official `*_withdecoder_*` checkpoint's `module` dict: its deprecated
   * buffers (imn_m, imn_s, norm_black) are skipped.
   */
  override loadStateDict(dict: Record<string, Tensor>, options: { strict?: boolean } = {}): LoadResult {
    const kept = Object.fromEntries(Object.entries(dict).filter(([k]) => !DEPRECATED_KEYS.includes(k)));
    return super.loadStateDict(kept, options);
  }
}

