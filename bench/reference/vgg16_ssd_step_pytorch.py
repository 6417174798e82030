#!/usr/bin/env python3
"""The vgg16-ssd-step bench's network in PyTorch, so that the same work is timed on the same machine.

Usage: python3 bench/reference/vgg16_ssd_step_pytorch.py --per-cell 4,5,5,5,4,4 [--batch 1] [--width 1248]
  [--height 384] [--extra-stages 4] [--fc6-dilation 6] [--classes 2] [--steps 2] [--threads 2]
Prints one JSON object: {"framework": "pytorch", "version", "threads", "value": median ms per step, ...}.

Same network as bench/vgg16-ssd.bench.ts (detection/model/backbones/vgg16-reduced.ts and the SSD heads): VGG16
conv1_1..conv5_3 (3x3, bias, ReLU), 2x2 stride-2 pools (ceil mode, as 'same'), pool5 3x3 stride 1; L2Norm (scale 20,
learned per channel) on conv4_3; fc6 3x3 of rate 6 (1024), fc7 1x1 (1024); extra stages of a 1x1 reduce and a 3x3
stride-2 conv (256/512, then 128/256); per feature map a 3x3 class head (per-cell x classes) and a 3x3 box head
(per-cell x 4). Loss: softmax cross-entropy over all anchors against fixed random labels (~3% positive) plus smooth-L1
on the box outputs of positive anchors / (positives + 1); momentum SGD (lr 1e-3, 0.9); fixed random input. PyTorch is
NCHW; padding 1 at stride 2 gives the same output sizes as 'same'.
"""
import argparse
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

from step_timing import report_step_times

VGG_STAGES = [[64, 64], [128, 128], [256, 256, 256], [512, 512, 512], [512, 512, 512]]
EXTRAS = [(256, 512), (128, 256), (128, 256), (128, 256)]


class L2Norm(nn.Module):
    def __init__(self, channels, scale=20.0):
        super().__init__()
        self.scale = nn.Parameter(torch.full((channels,), scale))

    def forward(self, x):
        return x / torch.sqrt((x * x).sum(1, keepdim=True) + 1e-10) * self.scale.view(1, -1, 1, 1)


class VggSSD(nn.Module):
    def __init__(self, per_cell, classes, extra_stages, fc6_dilation):
        super().__init__()
        self.classes = classes
        self.stages = nn.ModuleList()
        cin = 3
        for stage in VGG_STAGES:
            convs = nn.ModuleList()
            for cout in stage:
                convs.append(nn.Conv2d(cin, cout, 3, 1, 1))
                cin = cout
            self.stages.append(convs)
        self.l2norm = L2Norm(512)
        self.fc6 = nn.Conv2d(512, 1024, 3, 1, fc6_dilation, dilation=fc6_dilation)
        self.fc7 = nn.Conv2d(1024, 1024, 1)
        self.extras = nn.ModuleList()
        cin = 1024
        for k in range(extra_stages):
            mid, out = EXTRAS[min(k, len(EXTRAS) - 1)]
            self.extras.append(nn.ModuleList([nn.Conv2d(cin, mid, 1), nn.Conv2d(mid, out, 3, 2, 1)]))
            cin = out
        channels = [512, 1024] + [EXTRAS[min(k, len(EXTRAS) - 1)][1] for k in range(extra_stages)]
        assert len(per_cell) == len(channels), f'{len(per_cell)} anchor counts for {len(channels)} feature maps'
        self.cls = nn.ModuleList([nn.Conv2d(c, a * classes, 3, 1, 1) for c, a in zip(channels, per_cell)])
        self.loc = nn.ModuleList([nn.Conv2d(c, a * 4, 3, 1, 1) for c, a in zip(channels, per_cell)])

    def features(self, x):
        out = []
        for s, convs in enumerate(self.stages):
            for conv in convs:
                x = F.relu(conv(x))
            if s == 3:
                out.append(self.l2norm(x))
            x = F.max_pool2d(x, 2, 2, ceil_mode=True) if s < 4 else F.max_pool2d(x, 3, 1, 1)
        x = F.relu(self.fc7(F.relu(self.fc6(x))))
        out.append(x)
        for reduce, conv in self.extras:
            x = F.relu(conv(F.relu(reduce(x))))
            out.append(x)
        return out

    def forward(self, x):
        feats = self.features(x)
        b = x.shape[0]
        # NCHW -> NHWC -> [B, cells * anchors, n], the order of the tfjs heads.
        flat = lambda y, n: y.permute(0, 2, 3, 1).reshape(b, -1, n)
        cls = torch.cat([flat(h(f), self.classes) for h, f in zip(self.cls, feats)], 1)
        loc = torch.cat([flat(h(f), 4) for h, f in zip(self.loc, feats)], 1)
        return cls.reshape(-1, self.classes), loc.reshape(-1, 4)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--per-cell', required=True)
    parser.add_argument('--batch', type=int, default=1)
    parser.add_argument('--width', type=int, default=1248)
    parser.add_argument('--height', type=int, default=384)
    parser.add_argument('--extra-stages', type=int, default=4)
    parser.add_argument('--fc6-dilation', type=int, default=6)
    parser.add_argument('--classes', type=int, default=2)
    parser.add_argument('--steps', type=int, default=2)
    parser.add_argument('--threads', type=int, default=os.cpu_count())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    net = VggSSD([int(a) for a in args.per_cell.split(',')], args.classes, args.extra_stages, args.fc6_dilation)
    x = torch.rand(args.batch, 3, args.height, args.width) * 2 - 1
    with torch.no_grad():
        anchors = net(x)[0].shape[0]
    labels = torch.where(torch.rand(anchors) < 0.03, 1 + torch.randint(0, args.classes - 1, (anchors,)), torch.zeros(anchors, dtype=torch.long))
    positive = (labels > 0).float().unsqueeze(1)
    box_targets = torch.randn(anchors, 4)
    num_positive = float(positive.sum())
    opt = torch.optim.SGD(net.parameters(), lr=1e-3, momentum=0.9)

    def step():
        opt.zero_grad(set_to_none=True)
        cls, loc = net(x)
        ce = F.cross_entropy(cls, labels)
        box = (F.smooth_l1_loss(loc, box_targets, reduction='none', beta=1.0) * positive).sum() / (num_positive + 1)
        loss = ce + box
        loss.backward()
        opt.step()
        return float(loss)

    report_step_times(step, args.steps, anchors=anchors, parameters=sum(p.numel() for p in net.parameters()))


if __name__ == '__main__':
    main()
