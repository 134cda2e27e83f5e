/**
 * The CPU backend: plain TypeScript over typed arrays. Conv and matmul use the fast blocked kernels;
 * everything else is the reference loop, which is already a single pass.
 */
import type { Backend } from './backend.ts';
import { unary, binary, where } from '../../kernels/cpu/elementwise.ts';
import { reduce, argmax } from '../../kernels/cpu/reduce.ts';
import { stridedCopy } from '../../kernels/cpu/copy.ts';
import { indexSelect, indexAdd, gather, scatterAdd } from '../../kernels/cpu/gather.ts';
import { gemm } from '../../kernels/cpu/gemm.ts';
import { conv2d, conv2dBackwardInput, conv2dBackwardWeight } from '../../kernels/cpu/conv2d.ts';
import { activeConv2d, activeConv2dBackwardInput, activeConv2dBackwardWeight } from '../../kernels/cpu/active_conv.ts';
import {
  maxPool2d, maxPool2dBackward, avgPool2d, avgPool2dBackward, adaptiveAvgPool2d, adaptiveAvgPool2dBackward,
} from '../../kernels/cpu/pool.ts';

export const cpuBackend: Backend = {
  name: 'cpu',
  unary, binary, where, reduce, argmax, stridedCopy, indexSelect, indexAdd, gather, scatterAdd, gemm,
  conv2d, conv2dBackwardInput, conv2dBackwardWeight, activeConv2d, activeConv2dBackwardInput, activeConv2dBackwardWeight,
  maxPool2d, maxPool2dBackward, avgPool2d, avgPool2dBackward, adaptiveAvgPool2d, adaptiveAvgPool2dBackward,
};
