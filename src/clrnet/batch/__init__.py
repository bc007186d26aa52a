"""Scale: batches on Ray Data (``--engine ray``, extra ``scale``) and distributed training."""
