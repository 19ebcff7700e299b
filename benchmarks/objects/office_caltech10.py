# Office-Caltech10 photos (amazon, caltech, dslr, webcam; 10 classes) through a frozen
# ImageNet EfficientNet-Lite0 at 160 px, every method training its heads on the cached
# vectors (frozen-feature mode), all 12 directions, closed / partial / open. Offline and on CPU:
# extraction runs once (~25 ms an image and view on 2 cores; 2,533 images x (1 + 4 views)),
# then every cell and every rerun reads the data cache.
#
# Point it at your copy, laid out ROOT/<domain>/<class>/*.jpg (backpack/back_pack and
# laptop/laptop_computer are both accepted):
#   u2cdr run benchmarks/objects/office_caltech10.py \
#       --cfg-options office_caltech10_lite0.images.root=/data/office_caltech_10
# For better features use 224 px (backbone image_size=224; the image transform follows).
_base_ = ['../_base_/datasets/office_caltech10.py', '../_base_/methods/features.py']

office_caltech10_lite0 = dict(
    type='frozen_features',
    name='office_caltech10',
    images=dict(type='office_caltech10', root=None),
    backbone=dict(type='efficientnet_lite0', pretrained=True, image_size=160),
    views=4,
    pairs={{_base_.office_caltech10.pairs}},
)

methods = ['pretrained', 'instdisc', 'uem', 'ucdir', 'protoot', 'coda', 'pcs', 'cds', 'darl', 'dn2a',
           'dgdir']
datasets = ['office_caltech10_lite0']
scenarios = ['closed', 'partial', 'open']
seeds = [2024, 2025, 2026]
evaluation = dict(type='uem')
work_dir = 'work_dirs/office_caltech10_lite0'
device = 'cpu'
