# The pretrained floor at paper scale: UEM's initial model (ResNet-50, ImageNet MoCo-v2) used
# as it is. u2cdr never downloads weights: fetch moco_v2_800ep_pretrain.pth.tar from the
# facebookresearch/moco release page and put it at the path below (or override `checkpoint`).
# embedding='backbone' ranks the 2048-d pooled features; 'head' would rank MoCo's 128-d MLP
# projection, which this checkpoint carries.
pretrained = dict(
    type='pretrained',
    backbone=dict(type='resnet50', in_channels=3,
                  checkpoint='checkpoints/moco_v2_800ep_pretrain.pth.tar'),
    embedding='backbone',
    normalize=True,
    batch_size=128,
)
