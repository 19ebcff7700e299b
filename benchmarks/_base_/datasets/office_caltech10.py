# Office-Caltech10 (Amazon, Caltech, DSLR, Webcam; the 10 classes Office-31 shares with
# Caltech-256). No hub copy is known: download an image archive and set root to the folder
# holding amazon/, caltech/, dslr/, webcam/ (each <class>/<image>; class folders named as in
# Office-31, back_pack, laptop_computer, ..., or plainly, backpack, laptop).
# Pairs: all twelve directions, A->C, A->D, A->W, C->A, ... W->D (query -> gallery).
office_caltech10 = dict(
    type='office_caltech10',
    root=None,
    pairs=[('amazon', 'caltech'), ('amazon', 'dslr'), ('amazon', 'webcam'),
           ('caltech', 'amazon'), ('caltech', 'dslr'), ('caltech', 'webcam'),
           ('dslr', 'amazon'), ('dslr', 'caltech'), ('dslr', 'webcam'),
           ('webcam', 'amazon'), ('webcam', 'caltech'), ('webcam', 'dslr')],
)
