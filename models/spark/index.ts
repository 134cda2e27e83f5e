/**
 * SparK: the pretraining model and its parts (mask, sparse layers, decoder, loss).
 */
export { SparK, SparseEncoder } from './spark.ts';
export type { SparKOptions, SparKOutput, HierarchicalEncoder } from './spark.ts';
export { SparseContext, sparsify, SparseConv2d, SparseMaxPool2d, SparseAvgPool2d, SparseBatchNorm2d, SparseLayerNorm, SparseAdaptiveAvgPool2d, SparseConvNeXtBlock } from './sparse.ts';
export type { SparseImpl } from './sparse.ts';
export { LightDecoder, UNetBlock } from './decoder.ts';
export { randomActive, visibleCount, roundHalfEven } from './mask.ts';
export { patchify, unpatchify, patchTarget, maskedPatchLoss } from './loss.ts';
export {
  sparkResnet50 as resnet50, sparkResnet101 as resnet101, sparkResnet152 as resnet152, sparkResnet200 as resnet200,
  sparkConvnextSmall as convnextSmall, sparkConvnextBase as convnextBase, sparkConvnextLarge as convnextLarge,
  sparkResnet18Small as resnet18Small, sparkConvnextAttoSmall as convnextAttoSmall,
} from './presets.ts';
