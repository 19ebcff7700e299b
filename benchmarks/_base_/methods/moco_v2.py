# MoCo v2 (Chen, Fan, Girshick, He, 2020) at the harness's paper scale, trained on the union of
# both domains with no adaptation (a self-supervised reference). It keeps MoCo v2's own
# settings: MLP head to 128-d, tau 0.2, key momentum 0.999, one queue of 65,536 keys (shared by
# both domains; longer than an epoch of any U2CDR pair, so a query's own older keys are masked
# from its negatives), retrieval on the query encoder's pooled features (what MoCo evaluates).
# One process needs no shuffle BN (key_bn_splits=1; see u2cdr/methods/moco_v2.py). The
# optimisation is UEM's for a MoCo-v2-initialised ResNet-50 (SGD momentum 0.9, lr 2e-4 cosine to
# zero, weight decay 1e-4 = MoCo's, batch 64 per domain = 128 images per step, 100 epochs; use
# 200 for DomainNet); MoCo v2's lr 0.03 is for training from scratch. Put the checkpoint at the
# path below (u2cdr never downloads weights); its MLP head loads into both encoders.
moco_v2 = dict(
    type='moco_v2',
    backbone=dict(type='resnet50', in_channels=3,
                  checkpoint='checkpoints/moco_v2_800ep_pretrain.pth.tar'),
    head='mlp',
    low_dim=128,
    epochs=100,
    batch_size=64,
    lr=2e-4,
    momentum=0.9,
    weight_decay=1e-4,
    temperature=0.2,
    key_momentum=0.999,
    queue_size=65536,
    mask_own_keys=True,
    key_bn_splits=1,
    embedding='backbone',
    num_workers=4,
)
