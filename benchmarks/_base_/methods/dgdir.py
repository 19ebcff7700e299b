# DG-UCDIR / DGDIR (Hu, Zhang, Lee, ICCV 2023) at paper scale, from its scripts/train.sh:
# ResNet-50 from ImageNet MoCo-v2 with its MLP head, SGD momentum 0.9, lr 2e-4 cosine, weight
# decay 1e-4, --batch-size 64 over two domains (32 per domain), 200 epochs, tau 0.2, key momentum
# 0.999, queue 5120 per domain and view, 20 warm-up epochs, contrast weights 0.5, cluster weight
# 0.1, amplitude alpha 1.0, phase alpha 0.4 in a 50/224 low-frequency window. Retrieval uses the
# query encoder's pooled 2048-d backbone features. num_clusters='oracle': the script passes the
# class count (7 on DomainNet) and UEM gives it in the partial setting (App. B.2).
dgdir = dict(
    type='dgdir',
    backbone=dict(type='resnet50', in_channels=3,
                  checkpoint='checkpoints/moco_v2_800ep_pretrain.pth.tar'),
    head='mlp',
    low_dim=128,
    epochs=200,
    batch_size=32,
    lr=2e-4,
    momentum=0.9,
    weight_decay=1e-4,
    optimizer='sgd',
    lr_schedule='cosine',
    temperature=0.2,
    key_momentum=0.999,
    key_bn_splits=1,
    queue_size=5120,
    num_clusters='oracle',
    warmup_epochs=20,
    intra_weight=0.5,
    cross_weight=0.5,
    cluster_weight=0.1,
    cluster_temperature=1.0,
    amplitude_alpha=1.0,
    phase_alpha=0.4,
    phase_window=50 / 224,
    phase_gain=50000 / 224 / 255,
    kmeans_niter=20,
    kmeans_nredo=5,
    embedding='backbone',
    embed_encoder='query',
    num_workers=4,
)
