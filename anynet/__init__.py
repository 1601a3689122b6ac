"""anynet: from-scratch neural networks on any Array API library."""
