# DomainNet restricted to UCDIR's 7 classes (bird, feather, teapot, tiger, whale, windmill,
# zebra); other class folders under root are skipped. Set root to the folder holding clipart/,
# infograph/, painting/, quickdraw/, real/, sketch/. Pairs: the paper's five directions,
# Qu->Cl, Cl->Pa, Pa->In, In->Sk, Sk->Re.
domainnet7 = dict(
    type='domainnet7',
    root=None,
    pairs=[('quickdraw', 'clipart'), ('clipart', 'painting'), ('painting', 'infograph'),
           ('infograph', 'sketch'), ('sketch', 'real')],
)
