/**
 * Throughput of the WebAssembly SIMD kernels (kernels/wasm), single thread, float32: the gemm at 512³ and 1024³, a
 * 3×3 convolution (ResNet-like, N16 C64→64 32×32), a 7×7 depthwise convolution (ConvNeXt-like, N16 C96 16×16) and
 * the SparK decoder's transposed convolution (ConvTranspose2d k4 s2 p1, N8, C96→96, 24×24 → 48×48), each conv
 * timed as forward + backward input + backward weight. Rows whose case is the same as bench/kernels.ts's (and
 * bench/ref/torch_ops.py's) carry the same name, so the runner can set them side by side.
 * Each case is warmed up (which also lets V8 tier the wasm functions up to its optimizing compiler), then the best
 * of several runs is kept: on a shared machine the fastest run is the one least disturbed by other work. Threads: whatever the default runtime has (SPARKTS_THREADS). Left out: printing (the runner does it).
 */
import type { Conv2dParams } from '../kernels/cpu/conv2d.ts';
import { conv2dBackwardInputWasm, conv2dBackwardWeightWasm, conv2dWasm } from '../kernels/wasm/conv2d.ts';
import { gemmWasm } from '../kernels/wasm/gemm.ts';
import { wasmAvailable, wasmDescription } from '../kernels/wasm/runtime.ts';
import { bestMs, randomFloat32, row, type Row } from './timing.ts';


function benchMatmul(name: string, n: number): Row {
  const a = randomFloat32(n * n), b = randomFloat32(n * n), c = new Float32Array(n * n);
  const p = { M: n, N: n, K: n, transA: false, transB: false, accumulate: false };
  const ms = bestMs(() => gemmWasm(p, a, 0, b, 0, c, 0));
  return row(name, `${n}x${n}x${n}`, 2 * n * n * n, ms);
}

/**
 * The three passes of the convolution p, 2·N·K·OH·OW·(C/G)·R·S flops each. A transposed convolution is the same
 * three passes of its adjoint convolution (its forward is that conv's backward input), so it is timed as such.
 */
function benchConvForwardBackward(name: string, p: Conv2dParams, shape?: string): Row {
  const x = randomFloat32(p.N * p.C * p.H * p.W);
  const w = randomFloat32(p.K * (p.C / p.groups) * p.R * p.S);
  const dy = randomFloat32(p.N * p.K * p.OH * p.OW);
  const y = new Float32Array(dy.length), dx = new Float32Array(x.length), dw = new Float32Array(w.length);
  const ms = bestMs(() => {
    conv2dWasm(x, w, y, p);
    conv2dBackwardInputWasm(dy, w, dx, p);
    conv2dBackwardWeightWasm(x, dy, dw, p);
  }, 3, 5);
  const flops = 3 * 2 * p.N * p.K * p.OH * p.OW * (p.C / p.groups) * p.R * p.S;
  shape ??= `N${p.N} C${p.C}->${p.K} ${p.H}x${p.W} k${p.R}x${p.S} s${p.strideH} p${p.padH} g${p.groups}`;
  return row(name, shape, flops, ms);
}

/** 'wasm-simd128' or 'wasm-relaxed-simd' (or why the kernels are unavailable), for the table's heading. */
export function benchWasmInfo(): string {
  return wasmDescription();
}

/** The rows, or none where the wasm SIMD kernels are unavailable (benchWasmInfo says why). */
export async function benchWasm(): Promise<Row[]> {
  if (!wasmAvailable()) return [];
  const unit = { strideH: 1, strideW: 1, dilationH: 1, dilationW: 1 };
  return [
    benchMatmul('matmul', 512),
    benchMatmul('matmul 1024', 1024),
    benchConvForwardBackward('conv3x3 fwd+bwd', {
      N: 16, C: 64, H: 32, W: 32, K: 64, R: 3, S: 3, OH: 32, OW: 32, padH: 1, padW: 1, groups: 1, ...unit,
    }),
    benchConvForwardBackward('depthwise7x7 fwd+bwd', {
      N: 16, C: 96, H: 16, W: 16, K: 96, R: 7, S: 7, OH: 16, OW: 16, padH: 3, padW: 3, groups: 96, ...unit,
    }),
    // ConvTranspose2d(96, 96, 4, stride 2, padding 1) on N8 24×24 → 48×48: the adjoint conv maps 48×48 → 24×24.
    benchConvForwardBackward('convTranspose4x4s2 fwd+bwd', {
      N: 8, C: 96, H: 48, W: 48, K: 96, R: 4, S: 4, OH: 24, OW: 24, padH: 1, padW: 1, groups: 1,
      ...unit, strideH: 2, strideW: 2,
    }, 'N8 C96->96 24x24->48x48 k4x4 s2 p1 (transposed)'),
  ];
}
