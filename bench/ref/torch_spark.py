"""PyTorch CPU reference for bench/spark.ts: the official-style SparK training step (dense-masked sparse layers,
as the official code runs them), ResNet-18-width encoder (basic blocks [2,2,2,2], widths 64..512), 96x96 input,
batch 16 (--batch), decoder width 768, densify BN: forward, backward and one LAMB update (spark-spec 8.4, the
SpecLamb of test/fixtures/gen_optim.py, with SparK's decay / no-decay groups); and the encoder alone (forward +
backward of the sum of its stage maps). Uses the transcription of the official code in test/fixtures/gen_spark.py.
Prints one JSON object {name: {"ms": ...}} on stdout.
"""
import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', '..', 'test', 'fixtures'))
import gen_spark  # noqa: E402
import gen_optim  # noqa: E402
from timing import best_ms  # noqa: E402

CONFIG = {'family': 'resnet', 'block': 'basic', 'layers': [2, 2, 2, 2], 'widths': [64, 128, 256, 512]}


def bench(mask_ratio, batch, size=96):
    cfg = {'encoder': CONFIG, 'spark': {'inputSize': size, 'maskRatio': mask_ratio, 'decoderWidth': 768, 'densifyNorm': 'bn'}}
    model = gen_spark.build_spark(cfg).train()
    x = torch.randn(batch, 3, size, size)
    params = dict(model.named_parameters())
    groups = [{'params': [params[n] for n in names], 'weight_decay': 0.04 * scale}
              for _, names, scale in gen_optim.get_param_groups(model.named_parameters())]
    opt = gen_optim.SpecLamb(groups, lr=2e-4, betas=(0.9, 0.95), max_grad_norm=5.0)

    def step():
        model.zero_grad(set_to_none=True)
        model(x).backward()
        opt.step()

    def encoder_only():
        active = model.mask(batch, x.device)
        gen_spark._cur_active = active  # the sparse layers read the mask from this module global, as officially
        model.zero_grad(set_to_none=True)
        sum(f.sum() for f in model.sparse_encoder(x * active.repeat_interleave(32, 2).repeat_interleave(32, 3))).backward()

    # best of 5 after 3 warm-ups, as bench/spark.ts: a 2 s step on a shared VM varies by 10–40% from run to run
    return best_ms(step, 3, 5), best_ms(encoder_only, 3, 5)


if __name__ == '__main__':
    parser = argparse.ArgumentParser()
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--batch', type=int, default=16)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    out = {}
    for ratio in (0.6, 0.75):
        step, enc = bench(ratio, args.batch)
        out[f'spark step mask {ratio}'] = {'ms': step}
        out[f'encoder mask {ratio}'] = {'ms': enc}
    out['_info'] = f'torch {torch.__version__}, {torch.get_num_threads()} thread(s)'
    print(json.dumps(out))
