# CDS (Kim et al., ICCV 2021) at paper scale: CDS's own pre-training settings
# (VisionLearningGroup/CDS, CDS_pretraining/CDS_pretraining.py and custom_function/selfsup.py):
# 512-d linear head, lr 0.003 (cosine-annealed here), SGD momentum 0.9, weight decay 5e-4,
# batch 16 per domain, tau 0.1 (nce_t) for instance discrimination and the cross-domain softmax,
# bank momentum 0.5 (nce_m), lambda 1, entropy over the top 700 bank entries (n_neighbor), 7 epochs.
# The initial model is UEM's for every baseline ("for fair comparison"): ResNet-50 from ImageNet
# MoCo-v2; its 128-d MLP head does not fit the 512-d linear head and is dropped (random head).
# Put the checkpoint at the path below (u2cdr never downloads weights).
cds = dict(
    type='cds',
    backbone=dict(type='resnet50', in_channels=3,
                  checkpoint='checkpoints/moco_v2_800ep_pretrain.pth.tar'),
    head='linear',
    low_dim=512,
    epochs=7,
    batch_size=16,
    lr=0.003,
    momentum=0.9,
    weight_decay=5e-4,
    temperature=0.1,
    bank_momentum=0.5,
    renormalize_bank=True,
    negatives='bank',
    cross_domain_weight=1.0,
    top_k=700,
    embedding='head',
    num_workers=4,
)
