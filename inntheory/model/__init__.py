"""The polynomial invertible network: linear maps, activations, the network, its training."""
