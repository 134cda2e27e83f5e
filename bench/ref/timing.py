"""Timing shared by the PyTorch reference scripts: the best of `runs` timed calls after `warmup` untimed ones, in
ms. On a shared machine the fastest run is the one least disturbed by other work."""
import time


def best_ms(run, warmup, runs):
    for _ in range(warmup):
        run()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        run()
        times.append((time.perf_counter() - start) * 1e3)
    return min(times)
