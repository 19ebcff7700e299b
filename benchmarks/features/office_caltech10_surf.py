# The classic Office-Caltech10 feature files (Gong et al. 2012; as distributed with many
# domain-adaptation codes): one .mat per domain, features under `fts` (SURF, 800-d
# bag-of-words) or `feas` (DeCAF6, 4096-d) and 1-based `labels`. Only the folder is config:
#   u2cdr run benchmarks/features/office_caltech10_surf.py \
#       --cfg-options office_caltech10_surf.root=/data/office_caltech10_surf
# For DeCAF files set domain_files to their names (e.g. amazon_decaf.mat) and
# source_name='DeCAF6-4096 features'. z-scoring is the usual preprocessing of SURF histograms.
_base_ = ['../_base_/methods/features.py']

office_caltech10_surf = dict(
    type='features',
    name='office_caltech10',
    root='data/office_caltech10_surf',
    domain_files=dict(amazon='amazon_SURF_L10.mat', caltech='Caltech10_SURF_L10.mat',
                      dslr='dslr_SURF_L10.mat', webcam='webcam_SURF_L10.mat'),
    class_names=['back_pack', 'bike', 'calculator', 'headphones', 'keyboard', 'laptop_computer',
                 'monitor', 'mouse', 'mug', 'projector'],
    label_base='auto',
    source_name='SURF-800 features',
    augmentation=dict(normalize='zscore', noise_std=0.1, dropout=0.1),
    pairs=[('amazon', 'caltech'), ('amazon', 'dslr'), ('amazon', 'webcam'),
           ('caltech', 'amazon'), ('caltech', 'dslr'), ('caltech', 'webcam'),
           ('dslr', 'amazon'), ('dslr', 'caltech'), ('dslr', 'webcam'),
           ('webcam', 'amazon'), ('webcam', 'caltech'), ('webcam', 'dslr')],
)

methods = ['pretrained', 'instdisc', 'uem', 'ucdir', 'protoot', 'coda', 'pcs', 'cds', 'darl', 'dn2a',
           'dgdir']
datasets = ['office_caltech10_surf']
scenarios = ['closed', 'partial', 'open']
seeds = [2024, 2025, 2026]
evaluation = dict(type='uem')
work_dir = 'work_dirs/office_caltech10_surf'
device = 'cpu'
