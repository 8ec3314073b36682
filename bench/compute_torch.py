"""PyTorch CPU reference for bench/compute.ts: same architectures as src/models/zoo.ts.

Usage: /usr/bin/python3 bench/compute_torch.py MODEL BATCH ITERS WARMUP THREADS
Prints one JSON line: {"model", "forward_ms", "pgd_ms", "train_ms", "torch", "threads"} (medians).
"""
import json
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def conv(cin, cout):
    return nn.Conv2d(cin, cout, 3, padding=1)


def build(name):
    if name == "cnn-small":
        return (1, 28), nn.Sequential(
            conv(1, 16), nn.ReLU(), nn.MaxPool2d(2),
            conv(16, 32), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(32 * 7 * 7, 64), nn.ReLU(), nn.Linear(64, 10))
    if name == "cnn4":
        return (3, 32), nn.Sequential(
            conv(3, 32), nn.ReLU(), conv(32, 32), nn.ReLU(), nn.MaxPool2d(2),
            conv(32, 64), nn.ReLU(), conv(64, 64), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(64 * 8 * 8, 128), nn.ReLU(), nn.Linear(128, 10))
    raise SystemExit(f"unknown model {name}")


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
    name, batch, iters, warmup, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    (channels, size), model = build(name)
    x = torch.rand(batch, channels, size, size)
    y = torch.randint(0, 10, (batch,))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def forward():
        with torch.no_grad():
            model(x)

    def pgd():
        xa = x.clone().requires_grad_(True)
        loss = F.cross_entropy(model(xa), y)
        (g,) = torch.autograd.grad(loss, xa)
        return (xa + 0.01 * g.sign()).detach()

    def train():
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()

    out = {
        "model": name,
        "forward_ms": median_ms(forward, iters, warmup),
        "pgd_ms": median_ms(pgd, iters, warmup),
        "train_ms": median_ms(train, iters, warmup),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
