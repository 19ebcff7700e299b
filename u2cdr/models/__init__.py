"""Networks and state shared by methods: backbones (registered in ``BACKBONES``), projection
heads, the backbone+head ``Encoder`` with the ``embed_loader`` helper, checkpoint reading,
per-domain momentum memory banks and clustering."""
