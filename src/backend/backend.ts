/**
 * The Backend interface: the kernels an op may call, over typed arrays and explicit parameter objects.
 * A backend knows nothing of tensors or autograd. Its signatures are those of the reference CPU kernels.
 */
import type { unary, binary, where } from '../../kernels/cpu/elementwise.ts';
import type { reduce, argmax } from '../../kernels/cpu/reduce.ts';
import type { stridedCopy } from '../../kernels/cpu/copy.ts';
import type { indexSelect, indexAdd, gather, scatterAdd, sitesGather, sitesScatter } from '../../kernels/cpu/gather.ts';
import type { gemm } from '../../kernels/cpu/gemm.ts';
import type { channelStats, channelNormalize, channelNormalizeBackward, layerNormForward, layerNormBackward } from '../../kernels/cpu/norm.ts';
import type { conv2d, conv2dBackwardInput, conv2dBackwardWeight } from '../../kernels/cpu/conv2d.ts';
import type { lambUpdate } from '../../kernels/cpu/lamb.ts';
import type { sgdMomentumUpdate } from '../../kernels/cpu/optim_updates.ts';
import type { activeConv2d, activeConv2dBackwardInput, activeConv2dBackwardWeight } from '../../kernels/cpu/active_conv.ts';
import type {
  maxPool2d, maxPool2dBackward, avgPool2d, avgPool2dBackward, adaptiveAvgPool2d, adaptiveAvgPool2dBackward,
} from '../../kernels/cpu/pool.ts';

import type { DeviceKernels } from './device.ts';

export interface Backend {
  readonly name: string;
  /** Present on a backend that keeps tensors in its own memory (gpu): ops use these kernels for float32. */
  readonly device?: DeviceKernels;
  unary: typeof unary;
  binary: typeof binary;
  where: typeof where;
  reduce: typeof reduce;
  argmax: typeof argmax;
  stridedCopy: typeof stridedCopy;
  indexSelect: typeof indexSelect;
  indexAdd: typeof indexAdd;
  sitesGather: typeof sitesGather;
  sitesScatter: typeof sitesScatter;
  gather: typeof gather;
  scatterAdd: typeof scatterAdd;
  gemm: typeof gemm;
  conv2d: typeof conv2d;
  conv2dBackwardInput: typeof conv2dBackwardInput;
  conv2dBackwardWeight: typeof conv2dBackwardWeight;
  activeConv2d: typeof activeConv2d;
  activeConv2dBackwardInput: typeof activeConv2dBackwardInput;
  activeConv2dBackwardWeight: typeof activeConv2dBackwardWeight;
  channelStats: typeof channelStats;
  channelNormalize: typeof channelNormalize;
  channelNormalizeBackward: typeof channelNormalizeBackward;
  layerNormForward: typeof layerNormForward;
  layerNormBackward: typeof layerNormBackward;
  maxPool2d: typeof maxPool2d;
  maxPool2dBackward: typeof maxPool2dBackward;
  avgPool2d: typeof avgPool2d;
  avgPool2dBackward: typeof avgPool2dBackward;
  adaptiveAvgPool2d: typeof adaptiveAvgPool2d;
  adaptiveAvgPool2dBackward: typeof adaptiveAvgPool2dBackward;
  /** LAMB's per-parameter update on host arrays (kernels/cpu/lamb.ts); optional: the optimizer falls back to the reference. */
  lambUpdate?: typeof lambUpdate;
  /** SGD's momentum update (kernels/cpu/optim_updates.ts); optional likewise. */
  sgdMomentumUpdate?: typeof sgdMomentumUpdate;
  /**
   * Host memory the kernels use in place instead of copying it in and out ("resident", see
   * WasmRuntime.residentFloat32), for long-lived float32 arrays: parameters, their kept gradients, optimizer state.
   * `zeros(n)`: a new resident array; `adopt(a)`: a itself when resident, else a resident copy. Either gives null
   * where there is no room, and a backend without such memory leaves this out: the caller keeps ordinary arrays.
   * `zero(a)` zeroes a resident array (split over the threads) and says whether it could.
   */
  resident?: { zeros(n: number): Float32Array | null; adopt(a: Float32Array): Float32Array | null; zero(a: Float32Array): boolean };
}
