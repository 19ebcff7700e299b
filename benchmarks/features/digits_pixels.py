# The feature-level benchmark that runs offline: the digits domains (mnist <-> uci) given as
# raw-pixel vectors, 16x16 = 256-d, through `frozen_features` with the `pixels` backbone. Four
# augmented views per image (the digits affine preset) are cached beside each vector, so
# contrastive methods still see real views; `pretrained` is the raw pixels themselves
# (L2-normalised), the floor every method must beat.
_base_ = ['../_base_/methods/features.py']

digits_pixels = dict(
    type='frozen_features',
    name='digits_pixels',
    images=dict(type='digits'),
    backbone=dict(type='pixels', image_size=16, channels=1),
    views=4,
    source_name='raw-pixel (16x16) features',
    pairs=[('mnist', 'uci'), ('uci', 'mnist')],
)

methods = ['pretrained', 'instdisc', 'uem', 'ucdir', 'protoot', 'coda', 'pcs', 'cds', 'darl', 'dn2a',
           'dgdir']
datasets = ['digits_pixels']
scenarios = ['closed', 'partial', 'open']
seeds = [2024]
evaluation = dict(type='uem')
work_dir = 'work_dirs/digits_pixels'
device = 'cpu'
