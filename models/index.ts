/**
 * models: ResNet (timm names) and ConvNeXt (official names), with their presets.
 */
export { ResNet, resnet, resnet18, resnet34, resnet50, resnet101, resnet152, resnet200 } from './resnet.ts';
export type { ResNetOptions } from './resnet.ts';
export {
  ConvNeXt, ConvNeXtBlock, convnext, convnextAtto, convnextFemto, convnextPico, convnextNano, convnextTiny, convnextSmall,
  convnextBase, convnextLarge, linspaceFloat32,
} from './convnext.ts';
export type { ConvNeXtOptions } from './convnext.ts';
export * as spark from './spark/index.ts';
export { SparK } from './spark/index.ts';
