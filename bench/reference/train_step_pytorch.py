#!/usr/bin/env python3
"""The train-step bench's reference network in PyTorch, so that the same work is timed on the same machine.

Usage: python3 bench/reference/train_step_pytorch.py [--steps 5] [--threads 2] [--profile]
Prints one JSON object: {"framework": "pytorch", "version", "threads", "value": median ms per step, ...}.
--profile first prints each operator's self CPU time in one step (torch.profiler, to stderr), after a warm-up step.

Same network as bench/train-step.bench.ts: batch 8 of 128x384x3; conv3x3 (no bias) + batch-norm (batch
statistics, eps 1e-3) + ReLU: 32 ch stride 2; 32 stride 1 then 2x2 max-pool; 64; 64 -> head A; 128 stride 2;
128 -> head B. Each head is a 3x3 conv with bias to 4 anchors x (4 classes + 4 box). Loss: softmax cross-entropy over
all anchors against random labels plus smooth-L1 on the box outputs of positive anchors / (positives + 1); momentum
SGD (lr 0.01, 0.9); fixed random input and targets. PyTorch is NCHW; padding 1 gives the same output sizes as 'same'.
"""
import argparse
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

from step_timing import print_op_profile, report_step_times

BATCH, HEIGHT, WIDTH, ANCHORS, CLASSES = 8, 128, 384, 4, 4


def conv_bn(cin, cout, stride):
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride, 1, bias=False),
        nn.BatchNorm2d(cout, eps=1e-3),
        nn.ReLU(inplace=False),
    )


class ReferenceNetwork(nn.Module):
    def __init__(self):
        super().__init__()
        self.l1, self.l2 = conv_bn(3, 32, 2), conv_bn(32, 32, 1)
        self.l3, self.l4 = conv_bn(32, 64, 1), conv_bn(64, 64, 1)
        self.l5, self.l6 = conv_bn(64, 128, 2), conv_bn(128, 128, 1)
        self.head_a = nn.Conv2d(64, ANCHORS * (CLASSES + 4), 3, 1, 1)
        self.head_b = nn.Conv2d(128, ANCHORS * (CLASSES + 4), 3, 1, 1)

    @staticmethod
    def flat(y):
        # NCHW -> NHWC -> [cells * anchors, classes + 4], the order the tfjs bench uses.
        return y.permute(0, 2, 3, 1).reshape(-1, CLASSES + 4)

    def forward(self, x):
        x = F.max_pool2d(self.l2(self.l1(x)), 2, 2)
        a = self.l4(self.l3(x))
        b = self.l6(self.l5(a))
        return torch.cat([self.flat(self.head_a(a)), self.flat(self.head_b(b))], 0)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--steps', type=int, default=5)
    parser.add_argument('--threads', type=int, default=os.cpu_count())
    parser.add_argument('--profile', action='store_true')
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    net = ReferenceNetwork()
    x = torch.randn(BATCH, 3, HEIGHT, WIDTH)
    anchors = BATCH * ((HEIGHT // 4) * (WIDTH // 4) + (HEIGHT // 8) * (WIDTH // 8)) * ANCHORS
    labels = torch.where(torch.rand(anchors) < 0.03, 1 + torch.randint(0, CLASSES - 1, (anchors,)), torch.zeros(anchors, dtype=torch.long))
    positive = (labels > 0).float().unsqueeze(1)
    box_targets = torch.randn(anchors, 4)
    num_positive = float(positive.sum())
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)

    def step():
        opt.zero_grad(set_to_none=True)
        out = net(x)
        ce = F.cross_entropy(out[:, :CLASSES], labels)
        box = (F.smooth_l1_loss(out[:, CLASSES:], box_targets, reduction='none', beta=1.0) * positive).sum() / (num_positive + 1)
        loss = ce + box
        loss.backward()
        opt.step()
        return float(loss)

    if args.profile:
        step()
        print_op_profile(step)
    report_step_times(step, args.steps)


if __name__ == '__main__':
    main()
