"""Train ENet on the generated shapes segmentation task (the same task as ``train_unet``).

    python -m minicnn.apps.train_enet
    python -m minicnn.apps.train_enet --data DIR --num-classes K   # your PNGs: DIR/images, DIR/masks

``minicnn.models.ENet`` (Paszke et al. 2016) downsamples by 8 in its encoder and
upsamples back with max-unpooling; inputs must be multiples of 8 pixels. As in the
ENet paper, the cross-entropy weighs class k by w_k = 1 / ln(1.02 + p_k), with p_k
the fraction of training pixels of class k, so the rare classes (small shapes)
count more than the abundant background. Everything else (data, Adam with cosine
decay, the test scores, the image | truth | prediction PNG) is ``train_unet``'s.
The last line printed is the mean IoU, e.g. ``miou=0.93``.
"""
from .. import models
from .common import blas_threads, make_parser, setup
from .train_unet import data_channels, segmentation_arguments, train_segmentation


def build_parser():
    return segmentation_arguments(make_parser(__doc__), epochs=12, lr=1e-2, batch_size=32)


def main(argv=None):
    args = setup(build_parser().parse_args(argv))
    with blas_threads(args.blas_threads):
        return run(args)


def run(args):
    in_channels, num_classes = data_channels(args)
    model = models.ENet(num_classes=num_classes, in_channels=in_channels)
    return train_segmentation(args, model, "enet", class_weight="enet")


if __name__ == "__main__":
    main()
