/**
 * Kernel throughput on the CPU, float32: the fast gemm at 512³, a 3×3 convolution (ResNet-like, N16 C64→64
 * 32×32) and a 7×7 depthwise convolution (ConvNeXt-like, N16 C96 16×16), each conv timed as forward + backward
 * input + backward weight. Each case is warmed up, then the best of several runs is kept: on a shared machine the
 * fastest run is the one least disturbed by other work. `bench/ref/torch_ops.py` measures the same cases, named
 * alike, in PyTorch. Left out: printing (the bench runner does it).
 */
import { gemm } from '../kernels/cpu/gemm.ts';
import { conv2d, conv2dBackwardInput, conv2dBackwardWeight, type Conv2dParams } from '../kernels/cpu/conv2d.ts';

import { bestMs, randomFloat32, row, type Row } from './timing.ts';

export type { Row };


function benchMatmul(n: number): Row {
  const a = randomFloat32(n * n), b = randomFloat32(n * n), c = new Float32Array(n * n);
  const p = { M: n, N: n, K: n, transA: false, transB: false, accumulate: false };
  const ms = bestMs(() => gemm(p, a, 0, b, 0, c, 0));
  return row('matmul', `${n}x${n}x${n}`, 2 * n * n * n, ms);
}

/** 3 passes, each 2·N·K·OH·OW·(C/G)·R·S flops. */
function benchConvForwardBackward(name: string, p: Conv2dParams): Row {
  const x = randomFloat32(p.N * p.C * p.H * p.W);
  const w = randomFloat32(p.K * (p.C / p.groups) * p.R * p.S);
  const dy = randomFloat32(p.N * p.K * p.OH * p.OW);
  const y = new Float32Array(dy.length), dx = new Float32Array(x.length), dw = new Float32Array(w.length);
  const ms = bestMs(() => {
    conv2d(x, w, y, p);
    conv2dBackwardInput(dy, w, dx, p);
    conv2dBackwardWeight(x, dy, dw, p);
  }, 2, 5);
  const flops = 3 * 2 * p.N * p.K * p.OH * p.OW * (p.C / p.groups) * p.R * p.S;
  const shape = `N${p.N} C${p.C}->${p.K} ${p.H}x${p.W} k${p.R}x${p.S} s${p.strideH} p${p.padH} g${p.groups}`;
  return row(name, shape, flops, ms);
}

export async function benchKernels(): Promise<Row[]> {
  const unit = { strideH: 1, strideW: 1, dilationH: 1, dilationW: 1 };
  return [
    benchMatmul(512),
    benchConvForwardBackward('conv3x3 fwd+bwd', {
      N: 16, C: 64, H: 32, W: 32, K: 64, R: 3, S: 3, OH: 32, OW: 32, padH: 1, padW: 1, groups: 1, ...unit,
    }),
    benchConvForwardBackward('depthwise7x7 fwd+bwd', {
      N: 16, C: 96, H: 16, W: 16, K: 96, R: 7, S: 7, OH: 16, OW: 16, padH: 3, padW: 3, groups: 96, ...unit,
    }),
  ];
}
