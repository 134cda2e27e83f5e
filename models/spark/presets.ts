/**
 * SparK presets as the official registry builds them (spark-spec §6, §8.1): the encoder with its pretraining
 * drop-path rate, decoder width 768, densify norm 'bn' for ResNets and 'ln' for ConvNeXts, input 224, mask 0.6.
 * The small presets pair the small-image encoders (downsample ratio 8) with 32×32 inputs (a 4×4 patch grid) and
 * a 256-wide decoder — our own configuration for CPU-sized experiments; the official code has none.
 * Every option can be overridden.
 */
import { resnet18, resnet50, resnet101, resnet152, resnet200 } from '../resnet.ts';
import { convnextAtto, convnextSmall, convnextBase, convnextLarge } from '../convnext.ts';
import { SparK, type SparKOptions } from './spark.ts';

const official = (densifyNorm: 'bn' | 'ln') => ({ inputSize: 224, maskRatio: 0.6, decoderWidth: 768, densifyNorm });
const small = (densifyNorm: 'bn' | 'ln') => ({ inputSize: 32, maskRatio: 0.6, decoderWidth: 256, densifyNorm });

export const sparkResnet50 = (o: SparKOptions = {}) => new SparK(resnet50({ dropPath: 0.05 }), { ...official('bn'), ...o });
export const sparkResnet101 = (o: SparKOptions = {}) => new SparK(resnet101({ dropPath: 0.08 }), { ...official('bn'), ...o });
export const sparkResnet152 = (o: SparKOptions = {}) => new SparK(resnet152({ dropPath: 0.1 }), { ...official('bn'), ...o });
export const sparkResnet200 = (o: SparKOptions = {}) => new SparK(resnet200({ dropPath: 0.15 }), { ...official('bn'), ...o });
export const sparkConvnextSmall = (o: SparKOptions = {}) => new SparK(convnextSmall({ dropPath: 0.2 }), { ...official('ln'), ...o });
export const sparkConvnextBase = (o: SparKOptions = {}) => new SparK(convnextBase({ dropPath: 0.3 }), { ...official('ln'), ...o });
export const sparkConvnextLarge = (o: SparKOptions = {}) => new SparK(convnextLarge({ dropPath: 0.4 }), { ...official('ln'), ...o });

export const sparkResnet18Small = (o: SparKOptions = {}) => new SparK(resnet18({ smallInput: true }), { ...small('bn'), ...o });
export const sparkConvnextAttoSmall = (o: SparKOptions = {}) => new SparK(convnextAtto({ smallInput: true }), { ...small('ln'), ...o });
