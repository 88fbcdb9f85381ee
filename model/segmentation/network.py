"""A plain 2-D U-Net (Ronneberger et al. 2015): two 3x3 conv + BN + LeakyReLU per level, max-pool down,
transposed-conv up, skip connections by concatenation. Batch norm (running statistics at inference) keeps
the output of one image independent of its batch and of its field of view."""
from __future__ import annotations

import torch
from torch import nn


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.LeakyReLU(0.01, inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.LeakyReLU(0.01, inplace=True))


class UNet(nn.Module):
    def __init__(self, channels: list[int], classes: int, in_channels: int = 1):
        super().__init__()
        self.down = nn.ModuleList()
        cin = in_channels
        for c in channels:
            self.down.append(_block(cin, c))
            cin = c
        self.up = nn.ModuleList(nn.ConvTranspose2d(channels[i + 1], channels[i], 2, stride=2)
                                for i in range(len(channels) - 1))
        self.merge = nn.ModuleList(_block(2 * channels[i], channels[i]) for i in range(len(channels) - 1))
        self.head = nn.Conv2d(channels[0], classes, 1)

    @property
    def multiple(self) -> int:
        """Input sides must be multiples of this."""
        return 2 ** (len(self.down) - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else nn.functional.max_pool2d(x, 2))
            skips.append(x)
        x = skips.pop()
        for i in reversed(range(len(self.up))):
            x = self.merge[i](torch.cat([self.up[i](x), skips[i]], 1))
        return self.head(x)
