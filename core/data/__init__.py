"""Image sources and transforms.

* :func:`bundled_crops`: the embedded default real images (no network);
* :func:`scan_images`, :func:`iter_image_batches`, :func:`read_folder`,
  :class:`FolderDataset`: any folder;
* :func:`load_cifar10`: CIFAR-10, binary or python release (restricted unpickler);
* :class:`CelebA`: an ``img_align_celeba`` folder.

Images come out as float tensors in ``[-1, 1]``, and go back to files through
:func:`write_pngs` (:func:`to_uint8`, :func:`png_bytes`).
"""

from core.data.bundled import PHOTOS, bundled_crops, bundled_photos, photo_names
from core.data.celeba import CelebA
from core.data.cifar import CIFAR10_CLASSES, load_cifar10
from core.data.folder import (
    FolderDataset,
    Skipped,
    iter_image_batches,
    read_folder,
    scan_images,
)
from core.data.images import IMAGE_SUFFIXES, ImageReadError, decode_rgb, load_rgb
from core.data.pngs import clear_pngs, png_bytes, to_uint8, write_pngs
from core.data.transforms import (
    center_crop,
    from_signed,
    random_crop,
    resize,
    to_signed,
    to_tensor,
)

__all__ = [
    "CIFAR10_CLASSES", "IMAGE_SUFFIXES", "PHOTOS", "CelebA", "FolderDataset", "ImageReadError",
    "Skipped", "bundled_crops", "bundled_photos", "center_crop", "decode_rgb", "from_signed",
    "iter_image_batches", "load_cifar10", "load_rgb", "photo_names", "png_bytes", "random_crop",
    "clear_pngs", "read_folder", "resize", "scan_images", "to_signed", "to_tensor", "to_uint8",
    "write_pngs",
]
