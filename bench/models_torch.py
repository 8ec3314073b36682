"""PyTorch CPU reference for bench/models.ts: the same resnet18 and mobilenet-v2 as src/models/.

Usage: /usr/bin/python3 bench/models_torch.py MODEL SIZE CHANNELS WIDTH BATCH ITERS WARMUP THREADS
Prints one JSON line: {"forward_ms", "pgd_ms", "train_ms", "torch", "threads"} (medians).
"""
import json
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class PreActBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.shortcut = nn.Conv2d(cin, cout, 1, stride, bias=False) if stride != 1 or cin != cout else None

    def forward(self, x):
        out = F.relu(self.bn1(x))
        shortcut = self.shortcut(out) if self.shortcut is not None else x
        out = self.conv2(F.relu(self.bn2(self.conv1(out))))
        return out + shortcut


def resnet18(size, channels, width, classes=10):
    c = lambda base: max(1, round(base * width))
    if size >= 112:
        layers = [nn.Conv2d(channels, c(64), 7, 2, 3, bias=False), nn.BatchNorm2d(c(64)), nn.ReLU(), nn.MaxPool2d(3, 2, 1)]
    else:
        layers = [nn.Conv2d(channels, c(64), 3, 1, 1, bias=False)]
    cin = c(64)
    for stage, base in enumerate([64, 128, 256, 512]):
        for block in range(2):
            layers.append(PreActBlock(cin, c(base), 2 if stage > 0 and block == 0 else 1))
            cin = c(base)
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, classes))


def divisible(v):
    r = max(8, int(v + 4) // 8 * 8)
    return r + 8 if r < 0.9 * v else r


class InvertedResidual(nn.Module):
    def __init__(self, cin, cout, stride, t):
        super().__init__()
        hidden = cin * t
        layers = [] if t == 1 else [nn.Conv2d(cin, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6()]
        layers += [nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6(),
                   nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        return x + self.body(x) if self.residual else self.body(x)


def mobilenet_v2(size, channels, alpha, classes=10):
    small = size < 112
    cin = divisible(32 * alpha)
    layers = [nn.Conv2d(channels, cin, 3, 1 if small else 2, 1, bias=False), nn.BatchNorm2d(cin), nn.ReLU6()]
    for stage, (t, c, n, s) in enumerate([[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1], [6, 160, 3, 2], [6, 320, 1, 1]]):
        cout = divisible(c * alpha)
        for block in range(n):
            stride = (1 if small and stage == 1 else s) if block == 0 else 1
            layers.append(InvertedResidual(cin, cout, stride, t))
            cin = cout
    last = divisible(1280 * alpha) if alpha > 1 else 1280
    layers += [nn.Conv2d(cin, last, 1, bias=False), nn.BatchNorm2d(last), nn.ReLU6(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(last, classes)]
    return nn.Sequential(*layers)


def median_ms(fn, iters, warmup):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main():
    name, size, channels, width = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    batch, iters, warmup, threads = int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7]), int(sys.argv[8])
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = {"resnet18": resnet18, "mobilenet-v2": mobilenet_v2}[name](size, channels, width)
    x = torch.rand(batch, channels, size, size)
    y = torch.randint(0, 10, (batch,))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def forward():
        model.eval()
        with torch.no_grad():
            model(x)

    def pgd():
        model.eval()
        xa = x.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(F.cross_entropy(model(xa), y), xa)
        return (xa + 0.01 * g.sign()).clamp(0, 1).detach()

    def train():
        model.train()
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()

    print(json.dumps({
        "forward_ms": median_ms(forward, iters, warmup),
        "pgd_ms": median_ms(pgd, iters, warmup),
        "train_ms": median_ms(train, iters, warmup),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "params": sum(p.numel() for p in model.parameters()),
    }))


if __name__ == "__main__":
    main()
