# PCL (Li, Zhou, Xiong, Hoi, ICLR 2021; the v2 recipe: MLP head, cosine lr) at the harness's
# paper scale, trained on the union of both domains with no adaptation (a self-supervised
# reference). PCL's own settings: tau 0.2 (instance term and mean concentration), queue 16,384
# (shared by both domains, own older keys masked), key momentum 0.999, concentration alpha 10
# clipped to the 10th-90th percentiles, faiss K-means 20 iterations x 5 restarts, 20 warm-up
# epochs of instance-only training. Cluster counts: PCL's K = 25,000 / 50,000 / 100,000 on
# ImageNet's 1,281,167 images are clusters of about 51.2 / 25.6 / 12.8 images; that ratio is what
# transfers, so K = N / 51.2, N / 25.6, N / 12.8 for the N images of both domains (an Office-Home
# pair of ~8,800 images: 172 / 344 / 688 clusters; Office-31 D+W, 1,293 images: 25 / 51 / 101).
# The optimisation is UEM's for a MoCo-v2-initialised ResNet-50 (SGD momentum 0.9, lr 2e-4
# cosine to zero, weight decay 1e-4, batch 64 per domain, 100 epochs; use 200 for DomainNet).
# Put the checkpoint at the path below (u2cdr never downloads weights).
pcl = dict(
    type='pcl',
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
    queue_size=16384,
    mask_own_keys=True,
    key_bn_splits=1,
    images_per_cluster=[1281167 / 25000, 1281167 / 50000, 1281167 / 100000],
    warmup_epochs=20,
    proto_weight=1.0,
    concentration_alpha=10.0,
    concentration_clip=[10.0, 90.0],
    kmeans_niter=20,
    kmeans_nredo=5,
    embedding='backbone',
    num_workers=4,
)
