"""A segmentation dataset from a folder of PNG images and masks.

    root/images/NAME.png   gray, RGB, RGBA (alpha dropped) or palette (expanded to RGB)
    root/masks/NAME.png    gray or palette PNG whose values are class indices

Pairs are matched by NAME; files are read when a sample is requested.
"""
import os

import numpy as np

from .dataset import Dataset
from .png import read_png


class SegmentationFolder(Dataset):
    def __init__(self, root, image_dir="images", mask_dir="masks", transform=None):
        self.image_dir, self.mask_dir = os.path.join(root, image_dir), os.path.join(root, mask_dir)
        for d in (self.image_dir, self.mask_dir):
            if not os.path.isdir(d):
                raise FileNotFoundError(f"SegmentationFolder: no folder {d}")
        names = sorted(f for f in os.listdir(self.image_dir) if f.lower().endswith(".png"))
        unmatched = [n for n in names if not os.path.exists(os.path.join(self.mask_dir, n))]
        if unmatched:
            raise FileNotFoundError(f"SegmentationFolder: no mask in {self.mask_dir} for "
                                    f"{', '.join(unmatched[:5])}{' ...' if len(unmatched) > 5 else ''}")
        if not names:
            raise FileNotFoundError(f"SegmentationFolder: no .png images in {self.image_dir}")
        self.names, self.transform = names, transform

    def __len__(self):
        return len(self.names)

    def __getitem__(self, i):
        name = self.names[i]
        img = read_png(os.path.join(self.image_dir, name), expand_palette=True)
        mask = read_png(os.path.join(self.mask_dir, name))
        if mask.ndim != 2:
            raise ValueError(f"SegmentationFolder: mask {name} has shape {mask.shape}; masks must be "
                             "single-channel class indices (gray or palette PNG)")
        img = img[:, :, None] if img.ndim == 2 else img[:, :, :3]
        if img.shape[:2] != mask.shape:
            raise ValueError(f"SegmentationFolder: image {name} is {img.shape[:2]} but its mask is {mask.shape}")
        scale = 65535.0 if img.dtype == np.uint16 else 255.0
        x = np.ascontiguousarray(img.transpose(2, 0, 1), dtype=np.float32) / np.float32(scale)
        y = mask.astype(np.int64)
        return self.transform(x, y) if self.transform else (x, y)
