"""PyTorch CPU reference for bench/kernels.ts: the same three cases, float32, on `--threads N` threads.

matmul 512^3; conv 3x3 N16 C64->64 32x32 s1 p1 and depthwise 7x7 N16 C96 16x16 p3, each timed as forward plus
backward through autograd (input and weight gradients, no bias). Each case is warmed up, then the best of several
runs is kept, as the TypeScript side does. Prints one JSON object {name: {"gflops": ..., "ms": ...}} on stdout.
"""
import argparse
import json

import torch
import torch.nn.functional as F
from timing import best_ms


def result(flops, ms):
    return {"gflops": flops / ms / 1e6, "ms": ms}


def bench_matmul(n):
    a, b = torch.rand(n, n) * 2 - 1, torch.rand(n, n) * 2 - 1
    ms = best_ms(lambda: torch.mm(a, b), 2, 7)
    return result(2 * n ** 3, ms)


def bench_conv(n, c, k, size, kernel, padding, groups):
    x = (torch.rand(n, c, size, size) * 2 - 1).requires_grad_()
    w = (torch.rand(k, c // groups, kernel, kernel) * 2 - 1).requires_grad_()
    dy = torch.rand(n, k, size, size) * 2 - 1  # stride 1 with 'same' padding keeps the size

    def forward_backward():
        y = F.conv2d(x, w, padding=padding, groups=groups)
        x.grad = w.grad = None
        y.backward(dy)

    ms = best_ms(forward_backward, warmup=3, runs=5)
    # Forward, backward input and backward weight: 2·N·K·OH·OW·(C/G)·R·S flops each.
    flops = 3 * 2 * n * k * size * size * (c // groups) * kernel * kernel
    return result(flops, ms)


def bench_conv_transpose(n, cin, cout, size, kernel, stride, padding):
    """The SparK decoder's upsampling: ConvTranspose2d(k4, s2, p1), size -> 2*size, forward + backward."""
    x = (torch.rand(n, cin, size, size) * 2 - 1).requires_grad_()
    w = (torch.rand(cin, cout, kernel, kernel) * 2 - 1).requires_grad_()
    out = (size - 1) * stride - 2 * padding + kernel
    dy = torch.rand(n, cout, out, out) * 2 - 1

    def forward_backward():
        y = F.conv_transpose2d(x, w, stride=stride, padding=padding)
        x.grad = w.grad = None
        y.backward(dy)

    ms = best_ms(forward_backward, warmup=3, runs=5)
    flops = 3 * 2 * n * cin * size * size * cout * kernel * kernel
    return result(flops, ms)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=1)
    torch.set_num_threads(parser.parse_args().threads)
    torch.manual_seed(0)
    results = {
        "matmul": bench_matmul(512),
        "matmul 1024": bench_matmul(1024),
        "convTranspose4x4s2 fwd+bwd": bench_conv_transpose(8, 96, 96, 24, 4, 2, 1),
        "conv3x3 fwd+bwd": bench_conv(16, 64, 64, 32, 3, 1, 1),
        "depthwise7x7 fwd+bwd": bench_conv(16, 96, 96, 16, 7, 3, 96),
    }
    results["_info"] = f"torch {torch.__version__}, {torch.get_num_threads()} thread(s)"
    print(json.dumps(results))
