"""PyTorch CPU reference for bench/resnet.ts: one supervised ResNet-18 training step, float32, on `--threads N`.

The model is torchvision's resnet18 written out here (torchvision is not packaged with Debian's python3-torch):
7x7/2 stem + 3x3/2 max pool, basic blocks [2,2,2,2] with widths 64..512 (stride on the first 3x3 conv of a stage,
1x1 conv + BN shortcut where the shape changes), global average pool, 1000-class linear layer; timm's resnet18 is
the same network. A batch of 16x3x64x64 in train mode: forward, cross-entropy, backward, SGD (lr 0.01, momentum
0.9). Warmed up, then the best of several steps is kept, as the TypeScript side does.
Prints one JSON object {"resnet18 step": {"ms": ...}, "_info": ...} on stdout.
"""
import argparse
import json

import torch
import torch.nn as nn
import torch.nn.functional as F
from timing import best_ms


class BasicBlock(nn.Module):
    def __init__(self, inplanes, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)), inplace=True)
        y = self.bn2(self.conv2(y))
        return F.relu(y + (x if self.downsample is None else self.downsample(x)), inplace=True)


class ResNet18(nn.Module):
    def __init__(self, num_classes=1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        layers, inplanes = [], 64
        for i, planes in enumerate((64, 128, 256, 512)):
            layers.append(nn.Sequential(BasicBlock(inplanes, planes, 1 if i == 0 else 2), BasicBlock(planes, planes, 1)))
            inplanes = planes
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.fc = nn.Linear(512, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode='fan_out', nonlinearity='relu')

    def forward(self, x):
        x = self.maxpool(F.relu(self.bn1(self.conv1(x)), inplace=True))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


if __name__ == '__main__':
    parser = argparse.ArgumentParser()
    parser.add_argument('--threads', type=int, default=1)
    torch.set_num_threads(parser.parse_args().threads)
    torch.manual_seed(0)
    batch, size, classes = 16, 64, 1000
    model = ResNet18(classes).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(batch, 3, size, size)
    target = torch.randint(0, classes, (batch,))

    def step():
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), target).backward()
        opt.step()

    out = {'resnet18 step': {'ms': best_ms(step, 2, 5)}}
    out['_info'] = f'torch {torch.__version__}, {torch.get_num_threads()} thread(s)'
    print(json.dumps(out))
