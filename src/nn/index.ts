/**
 * nn: modules, layers, containers and initialisers, named as torch.nn.
 */
export { Module, Layer, Parameter, StateDictError } from './module.ts';
export type { ForwardContext, LoadResult } from './module.ts';
export {
  Conv2d, ConvTranspose2d, Linear, BatchNorm2d, LayerNorm, ReLU, ReLU6, GELU, Identity, MaxPool2d, AvgPool2d,
  AdaptiveAvgPool2d, Dropout, DropPath,
} from './layers.ts';
export type { Conv2dOptions, ConvTranspose2dOptions, BatchNormOptions, DataFormat } from './layers.ts';
export { Sequential, ModuleList, ParameterList } from './containers.ts';
export * as init from './init.ts';
