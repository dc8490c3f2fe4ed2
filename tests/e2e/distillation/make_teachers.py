"""TorchScript teachers for tests/e2e/distillation_test.cpp, as a Python user exports them
(torch.jit.script), for the 16x16 grey, 2-class images of its runs:

constant.pt       the logits [2, 0] for every image, whatever it shows
dropout.pt        the same followed by Dropout(0.5), saved in training mode (eval mode must undo it)
cnn.pt            a small convolutional network with random weights
cnn_retrained.pt  the same network with other weights (another teacher, same shape)
three_classes.pt  a network with 3 outputs
rgb.pt            a network that needs 3 input channels

usage: make_teachers.py DIR
"""
import sys

import torch
from torch import nn


class Constant(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("logits", torch.tensor([[2.0, 0.0]]))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.logits.expand(images.shape[0], 2) + 0.0 * images.mean()


def cnn(in_chans, classes):
    return nn.Sequential(nn.Conv2d(in_chans, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(16, classes))


def save(module, path, training=False):
    torch.jit.script(module.train(training)).save(path)


def main(out):
    torch.manual_seed(0)
    save(Constant(), f"{out}/constant.pt")
    save(nn.Sequential(Constant(), nn.Dropout(0.5)), f"{out}/dropout.pt", training=True)
    save(cnn(1, 2), f"{out}/cnn.pt")
    save(cnn(1, 2), f"{out}/cnn_retrained.pt")
    save(cnn(1, 3), f"{out}/three_classes.pt")
    save(cnn(3, 2), f"{out}/rgb.pt")


if __name__ == "__main__":
    main(sys.argv[1])
