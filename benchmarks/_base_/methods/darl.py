# DARLING (Zhang et al., CVPR 2022) at paper scale as UEM runs it: self-supervised pre-training
# only (the classifier parts dropped, UEM App. B.2), cosine retrieval (UCDIR's search).
# UEM says baselines keep "their default settings"; DARLING is MoCo-v2 based, so it keeps
# MoCo-v2's tau 0.2, key momentum 0.999 and MLP head, and takes UEM's schedule for the
# MoCo-v2-initialised ResNet-50 (SGD momentum 0.9, lr 2e-4 cosine to zero, weight decay 1e-4,
# batch 64 per domain, 100 epochs; use 200 for DomainNet). Each domain keeps a key queue of
# 4096 (capped at the domain's size; DG-UCDIR's MoCo queue is 5120). Put the checkpoint at the
# path below (u2cdr never downloads weights).
darl = dict(
    type='darl',
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
    queue_size=4096,
    aggregation='mixture',
    predictor_hidden=256,
    predictor_weight=1.0,
    embedding='head',
    num_workers=4,
)
