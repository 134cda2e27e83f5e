/**
 * sparkts: a pure-TypeScript tensor and reverse-mode autodiff engine for SparK.
 * This entry pulls in no GPU or native code.
 */
export { Tensor } from './tensor/tensor.ts';
export type { GradFn, NestedArray } from './tensor/tensor.ts';
export type { DType, FloatDType, DataArray, FloatArray } from './tensor/dtype.ts';
export { tensor, full, zeros, ones, zerosLike, onesLike, arange, rand, randn, randint } from './tensor/create.ts';
export type { CreateOptions, RandomOptions } from './tensor/create.ts';
export { Generator, manualSeed, defaultGenerator } from './tensor/random.ts';
export { noGrad, isGradEnabled } from './autograd/mode.ts';
export { BackwardNotSupported } from './autograd/define.ts';
export { setBackend, getBackendName, backend } from './backend/registry.ts';
export type { BackendOptions, BackendName } from './backend/registry.ts';
export { tidy } from './tensor/scope.ts';
export {
  add, sub, mul, div, pow, maximum, minimum, neg, exp, log, sqrt, rsqrt, abs, sign, relu, relu6, gelu, sigmoid, tanh,
  erf, clamp, eq, ne, lt, le, gt, ge, where, cast, logicalAnd, logicalNot,
} from './ops/elementwise.ts';
export { sum, mean, variance as var, max, min, argmax } from './ops/reduce.ts';
export { matmul, bmm } from './ops/matmul.ts';
export {
  reshape, flatten, squeeze, unsqueeze, permute, transpose, expand, slice, narrow, pad, concat, stack, repeat,
  upsampleNearest, indexSelect, indexScatter, gather,
} from './ops/movement.ts';
export * as F from './ops/functional.ts';
export * as io from './io/index.ts';
export * as nn from './nn/index.ts';
export * as models from '../models/index.ts';
export { SparK } from '../models/spark/index.ts';
export * as data from './data/index.ts';
export * as optim from './optim/index.ts';
