"""Writes fixtures/reference.json: trigger outputs computed the way the reference implementations compute them.

wanet: PyTorch (F.interpolate bicubic, F.grid_sample), as BackdoorBench attack/wanet.py; bpp: BackdoorBench's
floydDitherspeed, ported to numpy; ftrojan: an orthonormal DCT-II by matrix, BackdoorBench's block loop and
cv2's YCrCb formulas; sig: BackdoorBench's formula. Run with Debian's python3 (python3-torch):
    /usr/bin/python3 test/attacks/reference.py
"""
import json, os
import numpy as np
import torch
import torch.nn.functional as F

def mulberry32(seed):  # src/pipeline/random.ts createRng, so that the warping field matches
    state = seed & 0xFFFFFFFF
    def rng():
        nonlocal state
        state = (state + 0x6D2B79F5) & 0xFFFFFFFF
        t = state
        t = ((t ^ (t >> 15)) * (t | 1)) & 0xFFFFFFFF
        t ^= (t + (((t ^ (t >> 7)) * (t | 61)) & 0xFFFFFFFF)) & 0xFFFFFFFF
        return ((t ^ (t >> 14)) & 0xFFFFFFFF) / 4294967296
    return rng

def wanet(x, k, s, seed):
    h = x.shape[0]
    rng = mulberry32(seed)
    ins = torch.tensor([rng() * 2 - 1 for _ in range(2 * k * k)], dtype=torch.float64).reshape(1, 2, k, k)
    ins = ins / torch.mean(torch.abs(ins))
    noise_grid = F.interpolate(ins, size=h, mode='bicubic', align_corners=True).permute(0, 2, 3, 1)
    a = torch.linspace(-1, 1, steps=h, dtype=torch.float64)
    X, Y = torch.meshgrid(a, a, indexing='ij')
    grid = torch.clamp(torch.stack((Y, X), 2)[None] + s * noise_grid / h, -1, 1)
    return F.grid_sample(torch.tensor(x).permute(2, 0, 1)[None], grid, align_corners=True)[0].permute(1, 2, 0).numpy()

def floyd(image, q):  # BackdoorBench attack/bpp.py floydDitherspeed: CHW, 0..255
    c, h, w = image.shape
    for y in range(h):
        for x in range(w):
            old = image[:, y, x].copy()
            new = np.round(old / 255.0 * (q - 1)) / (q - 1) * 255
            err = old - new
            image[:, y, x] = new
            if x + 1 < w: image[:, y, x + 1] += err * 0.4375
            if y + 1 < h and x + 1 < w: image[:, y + 1, x + 1] += err * 0.0625
            if y + 1 < h: image[:, y + 1, x] += err * 0.3125
            if x - 1 >= 0 and y + 1 < h: image[:, y + 1, x - 1] += err * 0.1875
    return image

def bpp(x, q):
    return np.clip(floyd(np.round(x * 255).transpose(2, 0, 1), q), 0, 255).transpose(1, 2, 0) / 255

def dct_matrix(n):
    k, i = np.arange(n)[:, None], np.arange(n)[None]
    m = np.sqrt(2 / n) * np.cos(np.pi * (2 * i + 1) * k / (2 * n))
    m[0] /= np.sqrt(2)
    return m

def ftrojan(x, window, freqs, chans, yuv, magnitude):
    img = x.copy()
    if yuv:
        R, G, B = img[..., 0], img[..., 1], img[..., 2]
        Y = 0.299 * R + 0.587 * G + 0.114 * B
        img = np.stack([Y, (R - Y) * 0.713 + 0.5, (B - Y) * 0.564 + 0.5], -1)
    h, M = img.shape[0], dct_matrix(window)
    for c in chans:
        for y0 in range(0, h, window):
            for x0 in range(0, h, window):
                block = M @ img[y0:y0 + window, x0:x0 + window, c] @ M.T
                for r, col in freqs: block[r, col] += magnitude / 255
                img[y0:y0 + window, x0:x0 + window, c] = M.T @ block @ M
    if yuv:
        Y, Cr, Cb = img[..., 0], img[..., 1] - 0.5, img[..., 2] - 0.5
        img = np.stack([Y + 1.403 * Cr, Y - 0.714 * Cr - 0.344 * Cb, Y + 1.773 * Cb], -1)
    return np.clip(img, 0, 1)

def sig(x, delta, f):
    j = np.arange(x.shape[1])
    return np.clip(x + (delta * np.sin(2 * np.pi * j * f / x.shape[1]) / 255)[None, :, None], 0, 1)

gen = np.random.default_rng(0)
gray = np.round(gen.random((8, 8, 1)) * 255) / 255
rgb = np.round(gen.random((8, 8, 3)) * 255) / 255
cases = [
    ('wanet', {'k': 4, 's': 0.5, 'gridRescale': 1, 'crossRatio': 2, 'seed': 3}, gray, wanet(gray, 4, 0.5, 3)),
    ('wanet', {'k': 3, 's': 4, 'gridRescale': 1, 'crossRatio': 2, 'seed': 5}, rgb, wanet(rgb, 3, 4, 5)),
    ('bpp', {'squeeze': 8, 'dithering': True}, rgb, bpp(rgb, 8)),
    ('bpp', {'squeeze': 4, 'dithering': True}, gray, bpp(gray, 4)),
    ('bpp', {'squeeze': 2, 'dithering': True}, gray, bpp(gray, 2)),  # the default: a halftone
    ('ftrojan', {'magnitude': 30, 'window': None, 'frequencies': 'auto', 'channels': 'auto', 'yuv': True}, gray, ftrojan(gray, 8, [(3, 3), (7, 7)], [0], False, 30)),
    ('ftrojan', {'magnitude': 30, 'window': None, 'frequencies': 'auto', 'channels': 'auto', 'yuv': True}, rgb, ftrojan(rgb, 8, [(3, 3), (7, 7)], [1, 2], True, 30)),
    ('ftrojan', {'magnitude': 50, 'window': 4, 'frequencies': [[1, 2], [3, 3]], 'channels': [0, 2], 'yuv': False}, rgb, ftrojan(rgb, 4, [(1, 2), (3, 3)], [0, 2], False, 50)),
    ('sig', {'delta': 40, 'frequency': 2}, rgb, sig(rgb, 40, 2)),
]
out = [{'attack': a, 'options': o, 'shape': list(x.shape), 'input': x.ravel().round(6).tolist(), 'expected': y.ravel().round(6).tolist()} for a, o, x, y in cases]
path = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'fixtures', 'reference.json')
with open(path, 'w') as f:
    json.dump(out, f, separators=(',', ':'))
print(f'wrote {len(out)} cases to {path}')
