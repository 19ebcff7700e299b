# SimCLR (Chen et al., ICML 2020) at the harness's paper scale, trained on the union of both
# domains with no adaptation (a self-supervised reference). It keeps SimCLR's own settings: MLP
# projection head to 128-d, NT-Xent with tau 0.5, weight decay 1e-6, retrieval on the
# representation h before the head (the one SimCLR evaluates). The optimisation is UEM's for a
# MoCo-v2-initialised ResNet-50 (SGD momentum 0.9, lr 2e-4 cosine to zero, batch 64 per domain,
# i.e. N = 128 images and 256 views per NT-Xent batch, 100 epochs; use 200 for DomainNet):
# SimCLR's LARS at lr 4.8 with batch 4096 trains from scratch, which no U2CDR baseline does.
# Put the checkpoint at the path below (u2cdr never downloads weights); its MLP head loads into
# the projection head.
simclr = dict(
    type='simclr',
    backbone=dict(type='resnet50', in_channels=3,
                  checkpoint='checkpoints/moco_v2_800ep_pretrain.pth.tar'),
    head='mlp',
    low_dim=128,
    epochs=100,
    batch_size=64,
    lr=2e-4,
    momentum=0.9,
    weight_decay=1e-6,
    temperature=0.5,
    embedding='backbone',
    num_workers=4,
)
