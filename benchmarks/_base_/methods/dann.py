# DANN (Ganin & Lempitsky, ICML 2015; Ganin et al., JMLR 2016) at paper scale, label-free: the
# source-classification loss is replaced by per-domain instance discrimination, which keeps
# instdisc's paper-scale recipe (UEM stage 1: ResNet-50 from ImageNet MoCo-v2 with its 128-d MLP
# head, tau 0.07, bank momentum 0.99, bank negatives, batch 64 per domain, 100 epochs).
# DANN's published settings where they transfer: SGD momentum 0.9; the pre-trained layers at
# lr 0.001 and new layers (the domain discriminator) at 10x, weight decay 5e-4 (the released
# DANN/CDAN ResNet-50 code); gradient-reversal ramp lambda_p = 2/(1+exp(-10p)) - 1 up to 1;
# a discriminator with 1024 hidden units (DANN/CDAN use two such layers; the shared
# DomainClassifier has one). DANN anneals lr as 0.01/(1+10p)^0.75; here cosine to zero, as every
# method of the table. Put the checkpoint at the path below (u2cdr never downloads weights).
dann = dict(
    type='dann',
    backbone=dict(type='resnet50', in_channels=3,
                  checkpoint='checkpoints/moco_v2_800ep_pretrain.pth.tar'),
    head='mlp',
    low_dim=128,
    epochs=100,
    batch_size=64,
    lr=1e-3,
    momentum=0.9,
    weight_decay=5e-4,
    temperature=0.07,
    bank_momentum=0.99,
    renormalize_bank=True,
    negatives='bank',
    adversarial_weight=1.0,
    grl_schedule='dann',
    grl_gamma=10.0,
    discriminator_hidden=1024,
    discriminator_lr_scale=10.0,
    embedding='head',
    num_workers=4,
)
