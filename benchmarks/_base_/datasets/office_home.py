# Office-Home (Art, Clipart, Product, Real World; 65 classes). Online it loads from the hub;
# offline set root to a folder ROOT/<domain>/<class>/<image> (the original archive's folders
# 'Art', 'Clipart', 'Product', 'Real World' work as they are), which takes precedence.
# Pairs: the paper's twelve directions in its order, A->C, A->P, A->R, C->A, ... R->P.
office_home = dict(
    type='office_home',
    hub_id='flwrlabs/office-home',
    root=None,
    pairs=[('art', 'clipart'), ('art', 'product'), ('art', 'real_world'),
           ('clipart', 'art'), ('clipart', 'product'), ('clipart', 'real_world'),
           ('product', 'art'), ('product', 'clipart'), ('product', 'real_world'),
           ('real_world', 'art'), ('real_world', 'clipart'), ('real_world', 'product')],
)
