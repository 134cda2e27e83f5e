/**
 * F: the functional API, named as torch.nn.functional with camelCase options.
 */
export { conv2d, convTranspose2d, conv2dInput, conv2dWeight, conv2dActive } from './conv.ts';
export type { Conv2dOptions, ConvTranspose2dOptions, Pair } from './conv.ts';
export { maxPool2d, avgPool2d, adaptiveAvgPool2d } from './pool.ts';
export type { MaxPool2dOptions, AvgPool2dOptions } from './pool.ts';
export { linear, batchNorm, layerNorm, dropout, dropPath, softmax, logSoftmax, crossEntropy, mseLoss } from './nn.ts';
export type { BatchNormOptions, CrossEntropyOptions, Reduction } from './nn.ts';
export { relu, relu6, gelu, sigmoid, tanh } from './elementwise.ts';
export { pad, upsampleNearest } from './movement.ts';
