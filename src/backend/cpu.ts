/**
 * The CPU backend. Matrix products and convolutions (dense and active-site) run on the WebAssembly SIMD
 * kernels, on every core, when the runtime has them (float32; float64 stays in TypeScript for gradient checks);
 * otherwise on the plain TypeScript kernels. So do the elementwise arithmetic and ReLU maps and the batch-norm
 * channel passes and LAMB's update (each wasm kernel hands the layouts and ops it does not cover to its reference). Everything else
 * is the reference loop, already a single pass. Long-lived arrays (parameters, kept gradients, optimizer state)
 * can live in the runtime's memory (`resident`), where the convolutions read weights and the optimizers update in
 * place.
 * `SPARKTS_WASM=0` forces the TypeScript kernels; `SPARKTS_THREADS=n` sets the thread count.
 */
import type { Backend } from './backend.ts';
import { unary, binary, where } from '../../kernels/cpu/elementwise.ts';
import { reduce, argmax } from '../../kernels/cpu/reduce.ts';
import { stridedCopy } from '../../kernels/cpu/copy.ts';
import { indexSelect, indexAdd, gather, scatterAdd, sitesGather, sitesScatter } from '../../kernels/cpu/gather.ts';
import { gemm } from '../../kernels/cpu/gemm.ts';
import { channelStats, channelNormalize, channelNormalizeBackward, layerNormForward, layerNormBackward } from '../../kernels/cpu/norm.ts';
import { conv2d, conv2dBackwardInput, conv2dBackwardWeight } from '../../kernels/cpu/conv2d.ts';
import { activeConv2d, activeConv2dBackwardInput, activeConv2dBackwardWeight } from '../../kernels/cpu/active_conv.ts';
import {
  maxPool2d, maxPool2dBackward, avgPool2d, avgPool2dBackward, adaptiveAvgPool2d, adaptiveAvgPool2dBackward,
} from '../../kernels/cpu/pool.ts';
import { requireRuntime, wasmAvailable, wasmDescription } from '../../kernels/wasm/runtime.ts';
import { gemmWasm } from '../../kernels/wasm/gemm.ts';
import { conv2dWasm, conv2dBackwardInputWasm, conv2dBackwardWeightWasm } from '../../kernels/wasm/conv2d.ts';
import { activeConv2dWasm, activeConv2dBackwardInputWasm, activeConv2dBackwardWeightWasm } from '../../kernels/wasm/active_conv.ts';
import { unaryWasm, binaryWasm } from '../../kernels/wasm/elementwise.ts';
import { channelStatsWasm, channelNormalizeWasm, channelNormalizeBackwardWasm } from '../../kernels/wasm/norm.ts';
import { lambUpdateWasm } from '../../kernels/wasm/lamb.ts';
import { maxPool2dWasm } from '../../kernels/wasm/maxpool.ts';
import { sgdMomentumUpdateWasm } from '../../kernels/wasm/optim.ts';

const fast = wasmAvailable();

/** Resident arrays live in the wasm runtime's shared memory (none where it is not shared: one thread). */
const resident: Backend['resident'] = {
  zeros: (n) => requireRuntime().residentFloat32(n),
  adopt: (a) => {
    const rt = requireRuntime();
    if (rt.addressOf(a) >= 0) return a;
    const copy = rt.residentFloat32(a.length);
    copy?.set(a);
    return copy;
  },
  zero: (a) => {
    const rt = requireRuntime(), at = rt.addressOf(a);
    if (at < 0) return false;
    rt.zero(at, a.length);
    return true;
  },
};

export const cpuBackend: Backend = {
  name: fast ? `cpu (${wasmDescription()})` : 'cpu (TypeScript kernels, 1 thread)',
  unary: fast ? unaryWasm : unary,
  binary: fast ? binaryWasm : binary,
  where, reduce, argmax, stridedCopy, indexSelect, indexAdd, gather, scatterAdd, sitesGather, sitesScatter,
  gemm: fast ? gemmWasm : gemm,
  conv2d: fast ? conv2dWasm : conv2d,
  conv2dBackwardInput: fast ? conv2dBackwardInputWasm : conv2dBackwardInput,
  conv2dBackwardWeight: fast ? conv2dBackwardWeightWasm : conv2dBackwardWeight,
  activeConv2d: fast ? activeConv2dWasm : activeConv2d,
  activeConv2dBackwardInput: fast ? activeConv2dBackwardInputWasm : activeConv2dBackwardInput,
  activeConv2dBackwardWeight: fast ? activeConv2dBackwardWeightWasm : activeConv2dBackwardWeight,
  channelStats: fast ? channelStatsWasm : channelStats,
  channelNormalize: fast ? channelNormalizeWasm : channelNormalize,
  channelNormalizeBackward: fast ? channelNormalizeBackwardWasm : channelNormalizeBackward,
  layerNormForward, layerNormBackward,
  maxPool2d, maxPool2dBackward, avgPool2d, avgPool2dBackward, adaptiveAvgPool2d, adaptiveAvgPool2dBackward,
  ...(fast ? { lambUpdate: lambUpdateWasm, maxPool2d: maxPool2dWasm, sgdMomentumUpdate: sgdMomentumUpdateWasm, resident } : {}),
};
