# Per-domain instance discrimination (UEM Eqs. 5-6 alone) at paper scale: UEM's stage-1 recipe
# without prototypes. ResNet-50 from ImageNet MoCo-v2 with its MLP head (2048-2048-128, loaded
# from the checkpoint as UCDIR does), SGD momentum 0.9, lr 2e-4 cosine to zero, weight decay 1e-4
# (UCDIR), batch 64 per domain, 100 epochs (Office-31 / Office-Home; DomainNet uses 200),
# tau 0.07, bank momentum 0.99, negatives = the whole bank. Put the checkpoint at the path below
# (u2cdr never downloads weights).
instdisc = dict(
    type='instdisc',
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
    renormalize_bank=True,
    negatives='bank',
    embedding='head',
    num_workers=4,
)
