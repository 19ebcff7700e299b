# Office-31 (Amazon, DSLR, Webcam; 31 classes). No hub copy is known: download the archive and
# set root to the folder holding amazon/, dslr/, webcam/ (each <class>/<image>, or the original
# <domain>/images/<class>/<image>). Pairs: the paper's six directions, A->D, A->W, D->A, D->W,
# W->A, W->D (query -> gallery).
office31 = dict(
    type='office31',
    root=None,
    pairs=[('amazon', 'dslr'), ('amazon', 'webcam'), ('dslr', 'amazon'),
           ('dslr', 'webcam'), ('webcam', 'amazon'), ('webcam', 'dslr')],
)
