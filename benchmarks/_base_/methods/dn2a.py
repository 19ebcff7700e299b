# DN2A (Liu et al., CVPR 2023) at paper scale as UEM runs it: self-supervised pre-training only
# (the classifier parts dropped, UEM App. B.2), Euclidean retrieval. UEM's schedule for the
# MoCo-v2-initialised ResNet-50 (SGD momentum 0.9, lr 2e-4 cosine to zero, weight decay 1e-4,
# batch 64 per domain, 100 epochs; use 200 for DomainNet), tau 0.07 and bank momentum 0.99 as
# in UEM's own memory banks. The initial model is already semantic, so neighbour positives
# start in the first epoch. Strong views = the dataset's MoCo-v2 augmentation, then Gaussian
# blur (p 0.5) and random erasing (p 0.25). Put the checkpoint at the path below (u2cdr never
# downloads weights).
dn2a = dict(
    type='dn2a',
    backbone=dict(type='resnet50', in_channels=3,
                  checkpoint='checkpoints/moco_v2_800ep_pretrain.pth.tar'),
    head='mlp',
    low_dim=128,
    epochs=100,
    batch_size=64,
    lr=2e-4,
    momentum=0.9,
    weight_decay=1e-4,
    temperature=0.07,
    bank_momentum=0.99,
    num_in_domain=1,
    cross_neighbours='dual',
    centre_cross=True,
    neighbour_start_epoch=0,
    blur_p=0.5,
    erase_p=0.25,
    embedding='head',
    num_workers=4,
)
