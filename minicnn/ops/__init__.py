"""The differentiable ops, each a ``Function`` with forward/backward on raw arrays.

Families live in their own files; this package re-exports the functional forms
that ``Tensor`` methods and ``minicnn`` need.
"""
from .activation import leaky_relu, log_softmax, relu, sigmoid, softmax, tanh
from .arithmetic import add, div, matmul, maximum, minimum, mul, neg, pow, sub
from .elementwise import abs, clamp, clip, exp, log, sqrt, where
from .reduction import amax, amin, argmax, argmin, max, mean, min, std, sum, var
from .shape import (cat, chunk, clone, concatenate, expand, flatten, gather, getitem, pad, permute,
                    reshape, scatter, sort, split, squeeze, stack, topk, transpose, unsqueeze, view)
