"""Activation layers (parameter-free); PReLU lives with its op."""
from .. import ops
from .module import Module


class ReLU(Module):
    def __init__(self, inplace=False):
        super().__init__()  # inplace is accepted for PyTorch compatibility; ops never mutate

    def forward(self, x):
        return ops.relu(x)


class LeakyReLU(Module):
    def __init__(self, negative_slope=0.01, inplace=False):
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x):
        return ops.leaky_relu(x, self.negative_slope)


class Sigmoid(Module):
    def forward(self, x):
        return ops.sigmoid(x)


class Tanh(Module):
    def forward(self, x):
        return ops.tanh(x)


class Softmax(Module):
    def __init__(self, dim=None):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        return ops.softmax(x, self.dim)


class LogSoftmax(Softmax):
    def forward(self, x):
        return ops.log_softmax(x, self.dim)
