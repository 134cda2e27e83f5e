/**
 * One supervised ResNet-18 training step on the CPU, float32: torchvision/timm resnet18 (7×7/2 stem + max pool,
 * basic blocks [2,2,2,2], widths 64..512, 1000 classes), a batch of 16×3×64×64, forward, cross-entropy, backward
 * and an SGD update (lr 0.01, momentum 0.9), in train mode (batch-norm statistics from the batch). sparkts runs on
 * its default CPU backend with the default thread count (SPARKTS_THREADS). bench/ref/torch_resnet_step.py runs the
 * same step in PyTorch. Left out: printing (the runner does it).
 */
import { models, randn, randint, manualSeed, F, optim } from '../src/index.ts';
import { bestMs } from './timing.ts';

export const RESNET_STEP = { name: 'resnet18 step', batch: 16, size: 64, classes: 1000 };

export function benchResnetStep(): { name: string; ms: number } {
  const { name, batch, size, classes } = RESNET_STEP;
  manualSeed(0);
  const model = models.resnet18({ numClasses: classes }).train();
  const opt = new optim.SGD(model.parameters(), { lr: 0.01, momentum: 0.9 });
  const x = randn([batch, 3, size, size]);
  const target = randint(0, classes, [batch]);
  const step = () => {
    opt.zeroGrad({ setToNone: false }); // see bench/spark.ts
    F.crossEntropy(model.forward(x), target).backward();
    opt.step();
  };
  return { name, ms: bestMs(step, 2, 5) };
}
